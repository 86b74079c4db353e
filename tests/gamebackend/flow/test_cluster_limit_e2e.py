"""A cluster-scope limit holds across two real nodes sharing Redis."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest

from tests.gateway.wsclient import Raw
from tests.nodes import TEST_CONNECT_RULE, Node, NodeFactory

pytestmark = [pytest.mark.slow, pytest.mark.cluster]
CLUSTER_RATE = 40.0
CLUSTER_BURST = 40.0
PLAYERS_PER_NODE = 4
# Each player sends 25 moves/s (under its own 30/s limit); together 200/s, 5x the rule.
PLAYER_RATE = 25.0
FLOOD_S = 3.0
TOLERANCE = 0.05


async def flood(node: Node) -> tuple[int, int, float, float]:
    """One player's open-loop flood: (admitted, rejected, first send, last send)."""
    raw = await Raw.open(node.url(f"cl{uuid.uuid4().hex[:10]}"))
    await raw.recv()
    await raw.recv()
    sends = int(FLOOD_S * PLAYER_RATE)
    first = time.monotonic()
    for i in range(sends):
        await asyncio.sleep(max(0.0, first + i / PLAYER_RATE - time.monotonic()))
        await raw.send({"type": "move", "x": i % 100, "y": 1, "id": i})
    last = time.monotonic()
    admitted = rejected = 0
    while admitted + rejected < sends:
        msg = await raw.recv()
        if msg.get("re") is None:
            continue
        await raw.send({"type": "ack", "seq": msg["seq"]})
        if msg["type"] == "state":
            admitted += 1
        elif msg.get("code") == "rate_limited":
            rejected += 1
    await raw.close()
    return admitted, rejected, first, last


async def test_cluster_limit_holds_across_two_nodes(
    cluster_env: dict[str, str], node_factory: NodeFactory
) -> None:
    cluster_rule = ("ws.move", "--scope", "cluster", "--rate", str(CLUSTER_RATE),
                    "--burst", str(CLUSTER_BURST))  # fmt: skip
    env = {**cluster_env, "GAME_ABUSE_THRESHOLD": "100000"}
    node_a = node_factory(rules=[TEST_CONNECT_RULE, cluster_rule], **env)
    node_b = node_factory(rules=[], secret=node_a.secret, **env)
    results = await asyncio.gather(
        *(flood(n) for n in (node_a, node_b) for _ in range(PLAYERS_PER_NODE))
    )
    admitted = sum(r[0] for r in results)
    elapsed = max(r[3] for r in results) - min(r[2] for r in results)
    expected = CLUSTER_BURST + CLUSTER_RATE * elapsed
    assert sum(r[1] for r in results) > 0  # the flood really was over the limit
    assert abs(admitted - expected) <= TOLERANCE * expected, (admitted, expected)
    # Both nodes admitted a share: the limit is shared, not enforced on one node only.
    per_node = [sum(r[0] for r in results[:PLAYERS_PER_NODE]),
                sum(r[0] for r in results[PLAYERS_PER_NODE:])]  # fmt: skip
    assert min(per_node) > 0

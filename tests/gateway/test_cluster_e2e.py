"""Two cluster-profile nodes on the real PostgreSQL and Redis."""

from __future__ import annotations

import uuid

import pytest

from tests.gateway.wsclient import Raw, refused_status
from tests.nodes import NodeFactory

pytestmark = [pytest.mark.slow, pytest.mark.cluster]


async def test_a_ticket_used_on_one_node_is_refused_on_another(
    cluster_env: dict[str, str], node_factory: NodeFactory
) -> None:
    node_a = node_factory(**cluster_env)
    # The second node shares the database, Redis and secrets, not the var directory.
    node_b = node_factory(secret=node_a.secret, **cluster_env)
    player = f"c{uuid.uuid4().hex[:10]}"
    token = node_a.ticket(player)
    raw = await Raw.open(f"{node_a.ws_url}?ticket={token}")
    welcome = await raw.recv()
    assert welcome["node"].endswith(f":{node_a.port}")
    reply = await raw.request({"type": "move", "x": 4, "y": 2, "id": 1})
    assert reply["rev"] == 1
    # The jti is remembered in Redis, so the other node refuses the replay.
    assert await refused_status(f"{node_b.ws_url}?ticket={token}") == 403
    # A fresh ticket works on either node.
    assert await refused_status(node_b.url(f"c{uuid.uuid4().hex[:10]}")) is None
    await raw.close()


async def test_a_player_moving_to_another_node_takes_the_live_state_along(
    cluster_env: dict[str, str], node_factory: NodeFactory
) -> None:
    node_a = node_factory(**cluster_env)
    node_b = node_factory(secret=node_a.secret, **cluster_env)
    player = f"m{uuid.uuid4().hex[:10]}"
    on_a = await Raw.open(node_a.url(player))
    await on_a.recv()
    await on_a.recv()
    reply = await on_a.request({"type": "move", "x": 7, "y": 3, "id": 1})
    assert reply["rev"] == 1
    # The same player connects to the other node: one actor per player in the cluster.
    on_b = await Raw.open(node_b.url(player))
    welcome = await on_b.recv()
    assert welcome["node"].endswith(f":{node_b.port}")
    state = await on_b.recv()
    # The live state came along (no database round trip could have had it yet).
    assert (state["x"], state["y"], state["rev"]) == (7.0, 3.0, 1)
    assert await on_a.closed_with() == 4409
    reply = await on_b.request({"type": "move", "x": 8, "y": 3, "id": 2})
    assert reply["rev"] == 2
    await on_b.close()

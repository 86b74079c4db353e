"""What the node's server enforces below the application, against a real node (uvicorn):
the per-address connection cap, the handshake deadline, and protocol-level pings counted
against ``ws.control``."""

from __future__ import annotations

import asyncio
import json
import time
import uuid

import pytest

from tests.gateway.wsclient import Raw
from tests.nodes import TEST_CONNECT_RULE, Node, NodeFactory

pytestmark = pytest.mark.slow

# Upper bound on how long a test waits for the server to act (the deadlines under test
# are 1 s); a server that never acts fails the test after this.
ACT_BOUND_S = 15.0
TRICKLE_EVERY_S = 0.2


async def read_until_closed(reader: asyncio.StreamReader) -> bytes:
    data = b""
    async with asyncio.timeout(ACT_BOUND_S):
        while chunk := await reader.read(4096):
            data += chunk
    return data


async def test_connections_over_the_per_address_cap_get_429(node_factory: NodeFactory) -> None:
    node = node_factory(GAME_MAX_CONNS_PER_IP="3")
    held = [await asyncio.open_connection("127.0.0.1", node.port) for _ in range(3)]
    reader, writer = await asyncio.open_connection("127.0.0.1", node.port)
    response = await read_until_closed(reader)  # answered and closed before any request
    head, _, body = response.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 429 ")
    assert json.loads(body)["error"]["code"] == "too_many_connections"
    writer.close()
    # Another address is not limited by this one's connections.
    other = await asyncio.open_connection("127.0.0.1", node.port, local_addr=("127.0.0.2", 0))
    # A slot that comes free can be used again: a full game connection gets through.
    held[0][1].close()
    await held[0][1].wait_closed()
    raw = await open_when_slot_frees(node)
    assert (await raw.recv())["type"] == "state"
    await raw.close()
    for _, w in [*held[1:], other]:
        w.close()


async def open_when_slot_frees(node: Node) -> Raw:
    """The server counts the closed connection down when it sees the FIN: retry until then."""
    async with asyncio.timeout(ACT_BOUND_S):
        while True:
            try:
                raw = await Raw.open(node.url(f"p{uuid.uuid4().hex[:10]}"))
            except Exception:  # refused with 429 while the old connection is still counted
                await asyncio.sleep(0.05)
                continue
            assert (await raw.recv())["type"] == "welcome"
            return raw


async def test_a_trickled_upgrade_is_closed_at_the_handshake_deadline(
    node_factory: NodeFactory,
) -> None:
    node = node_factory(GAME_HANDSHAKE_TIMEOUT_S="1")
    reader, writer = await asyncio.open_connection("127.0.0.1", node.port)
    writer.write(b"GET /ws/game/?ticket=x HTTP/1.1\r\nHost: 127.0.0.1\r\n")
    started = time.monotonic()
    closed = False
    # Slowloris: one header byte at a time, never finishing the head. Idle time between
    # bytes is short, so only a bound on the whole handshake closes it.
    while time.monotonic() - started < ACT_BOUND_S:
        try:
            writer.write(b"X")
            await writer.drain()
        except ConnectionError:
            closed = True
            break
        try:
            if await asyncio.wait_for(reader.read(1), TRICKLE_EVERY_S) == b"":
                closed = True
                break
        except TimeoutError:
            continue
        except ConnectionError:
            closed = True
            break
    assert closed, "the trickled handshake was never closed"
    writer.close()
    # The node is fine and serves others.
    raw = await Raw.open(node.url("after-slowloris"))
    assert (await raw.recv())["type"] == "welcome"
    await raw.close()


async def test_a_silent_connection_is_closed_at_the_handshake_deadline(
    node_factory: NodeFactory,
) -> None:
    node = node_factory(GAME_HANDSHAKE_TIMEOUT_S="1")
    reader, writer = await asyncio.open_connection("127.0.0.1", node.port)
    assert await read_until_closed(reader) == b""  # closed without an answer
    writer.close()


async def test_protocol_pings_count_against_ws_control(node_factory: NodeFactory) -> None:
    node = node_factory(
        rules=[
            TEST_CONNECT_RULE,
            ("ws.control", "--scope", "player", "--rate", "0.1", "--burst", "3"),
        ],
        GAME_ABUSE_THRESHOLD="2",
    )
    raw = await Raw.open(node.url(f"p{uuid.uuid4().hex[:10]}"))
    assert (await raw.recv())["type"] == "welcome"
    assert (await raw.recv())["type"] == "state"
    for i in range(3):  # the burst: answered at the protocol level
        waiter = await raw.ws.ping(f"ping-{i}".encode())
        await asyncio.wait_for(waiter, ACT_BOUND_S)
    unanswered = await raw.ws.ping(b"over-the-limit")
    error = await raw.recv()
    assert (error["type"], error["code"]) == ("error", "rate_limited")
    assert error["retry_after_ms"] > 0
    assert not asyncio.ensure_future(unanswered).done()
    # More rejections than GAME_ABUSE_THRESHOLD close the connection, as for app pings.
    for _ in range(2):
        await raw.ws.ping()
    messages, code = await raw.collect_until_closed()
    assert code == 4429
    assert [m["code"] for m in messages] == ["rate_limited"] * 2

"""The SDK against a real Daphne node: requests, acks, heartbeat, reconnect with resume."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest

import gameproto as p
from gameclient import Backoff, ConnectRefused, GameClient, GameError
from gameproto.tickets import mint_ticket
from tests.nodes import Node

pytestmark = pytest.mark.slow

# Reconnect at once in tests; the production schedule (1 s, 2 s, 4 s...) is unit-tested.
FAST_BACKOFF = Backoff(base_s=0.01, cap_s=0.05)


def client_for(node: Node, player: str, **kwargs: object) -> GameClient:
    async def ticket() -> str:
        return node.ticket(player)

    return GameClient(node.ws_url, ticket, backoff=FAST_BACKOFF, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("codec", ["json", "msgpack"])
async def test_request_reply_over_both_codecs(node: Node, codec: str) -> None:
    player = f"sdk{uuid.uuid4().hex[:10]}"
    async with client_for(node, player, codec=codec) as client:
        assert client.welcome is not None
        assert client.welcome.player_id == player
        reply = await client.request(p.Move(x=12.5, y=3))
        assert isinstance(reply, p.State)
        assert (reply.x, reply.y, reply.rev) == (12.5, 3.0, 1)
        with pytest.raises(GameError) as err:
            await client.request(p.Move(x=-1, y=3))
        assert err.value.code == "invalid"
        assert err.value.field == "x"


async def test_sdk_answers_heartbeats_and_acks(node: Node) -> None:
    player = f"sdk{uuid.uuid4().hex[:10]}"
    async with client_for(node, player) as client:
        # Several heartbeat intervals (0.6 s on this node) of traffic: the SDK answers
        # pings and acknowledges, so neither 4408 nor 4413 (outbox 64) ends it.
        # 20 requests/s for 3 s: under the shipped ws.move limit (30/s), over 5 intervals.
        for i in range(60):
            await client.request(p.Move(x=float(i), y=0))
            await asyncio.sleep(0.05)
        assert client.connected
        assert client.session_id == client.welcome.session_id  # type: ignore[union-attr]


async def test_sdk_resumes_after_a_dropped_connection(node: Node) -> None:
    player = f"sdk{uuid.uuid4().hex[:10]}"
    async with client_for(node, player) as client:
        first_session = client.session_id
        await client.request(p.Move(x=1, y=1))
        ws = client._ws
        assert ws is not None
        ws.transport.abort()  # the network drops the TCP connection
        # The SDK hands each welcome to the app too: the first connection's, then the
        # reconnect's.
        welcomes: list[p.Welcome] = []
        while len(welcomes) < 2:
            msg = await asyncio.wait_for(client.recv(), 15)
            if isinstance(msg, p.Welcome):
                welcomes.append(msg)
        assert welcomes[1].resumed is True
        reply = await client.request(p.Move(x=2, y=2), timeout=15)
        assert isinstance(reply, p.State)
        assert reply.rev == 2
        assert client.session_id == first_session
        assert client.welcome is not None
        assert client.welcome.resumed is True


async def test_a_refused_connect_says_why(node: Node) -> None:
    async def expired() -> str:
        now = int(time.time())
        return mint_ticket(secret=node.secret, sub="late", now=now - 25, ttl_s=20)

    with pytest.raises(ConnectRefused) as refused:
        await GameClient(node.ws_url, expired).connect()
    assert (refused.value.status, refused.value.code) == (403, "ticket_expired")

"""The SDK's TicketSource against a real node: log in once, refresh on every reconnect."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
import uuid

import pytest

import gameproto as p
from gameclient import AuthError, Backoff, GameClient, TicketSource
from tests.nodes import Node

pytestmark = pytest.mark.slow

FAST_BACKOFF = Backoff(base_s=0.01, cap_s=0.05)
PASSWORD = "tall-Lantern-river-42"
WELCOME_TIMEOUT_S = 15


def refresh_status(node: Node, token: str) -> int:
    request = urllib.request.Request(
        f"{node.http_url}/api/auth/refresh", data=json.dumps({"refresh_token": token}).encode()
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return exc.code


async def next_welcome(client: GameClient) -> p.Welcome:
    while True:
        msg = await asyncio.wait_for(client.recv(), WELCOME_TIMEOUT_S)
        if isinstance(msg, p.Welcome):
            return msg


async def drop(client: GameClient) -> p.Welcome:
    """The network drops the connection; the SDK reconnects: the new welcome."""
    ws = client._ws
    assert ws is not None
    ws.transport.abort()
    return await next_welcome(client)


async def test_every_reconnect_uses_the_refresh_token(node: Node) -> None:
    saved: list[str] = []
    tickets = TicketSource.device(
        node.http_url, f"device-{uuid.uuid4().hex}", on_refresh_token=saved.append
    )
    async with GameClient(node.ws_url, tickets, backoff=FAST_BACKOFF) as client:
        assert await next_welcome(client) == client.welcome
        assert client.welcome is not None
        player = client.welcome.player_id
        assert tickets.player_id == player
        await client.request(p.Move(x=3, y=4))
        assert len(saved) == 1

        resumed = await drop(client)
        assert resumed.resumed is True
        assert resumed.player_id == player
        # The reconnect's ticket came from a refresh: a new token, the old one spent.
        assert len(saved) == 2
        assert saved[1] != saved[0]
        assert tickets.refresh_token == saved[1]
        reply = await client.request(p.Move(x=5, y=6))
        assert isinstance(reply, p.State)
        assert reply.rev == 2

        # Someone replays the spent token: the node ends the session. The SDK's next
        # refresh is refused, so it logs in again with the device id: same player.
        assert refresh_status(node, saved[0]) == 401
        again = await drop(client)
        assert again.player_id == player
        assert again.resumed is True
        assert len(saved) == 3


async def test_register_then_log_in_as_the_same_player(node: Node) -> None:
    name = f"sdk{uuid.uuid4().hex[:10]}"
    first = TicketSource.register(node.http_url, name, PASSWORD)
    async with GameClient(node.ws_url, first, backoff=FAST_BACKOFF) as client:
        assert client.welcome is not None
        player = client.welcome.player_id
    second = TicketSource.login(node.http_url, name.upper(), PASSWORD)
    async with GameClient(node.ws_url, second, backoff=FAST_BACKOFF) as client:
        assert client.welcome is not None
        assert client.welcome.player_id == player

    wrong = TicketSource.login(node.http_url, name, "wrong-" + PASSWORD)
    with pytest.raises(AuthError) as info:
        await GameClient(node.ws_url, wrong, backoff=FAST_BACKOFF).connect()
    assert (info.value.status, info.value.code) == (401, "bad_credentials")


async def test_a_saved_refresh_token_brings_a_guest_back(node: Node) -> None:
    guest = TicketSource.guest(node.http_url, name="Ann")
    await guest()
    player = guest.player_id
    saved = guest.refresh_token
    assert saved is not None

    later = TicketSource.resume(node.http_url, saved)
    async with GameClient(node.ws_url, later, backoff=FAST_BACKOFF) as client:
        assert client.welcome is not None
        assert client.welcome.player_id == player
    # Logged out, the token is dead; a guest has no credentials to fall back on.
    await later.logout()
    assert later.refresh_token is None
    stale = TicketSource.resume(node.http_url, saved)
    with pytest.raises(AuthError) as info:
        await stale()
    assert (info.value.status, info.value.code) == (401, "bad_refresh_token")


def test_bad_arguments_are_refused_early() -> None:
    with pytest.raises(ValueError, match="http"):
        TicketSource.device("ws://127.0.0.1:1/ws/game/", "device-123456")
    with pytest.raises(ValueError, match="together"):
        TicketSource("http://127.0.0.1:1", username="ann")

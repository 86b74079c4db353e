"""The gateway consumer in process (Channels' WebsocketCommunicator), real actors and DB."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from channels.testing import WebsocketCommunicator
from django.conf import settings

from gamebackend.asgi import application
from gamebackend.gateway import runtime as runtime_module
from gamebackend.gateway.consumer import GameConsumer
from gamebackend.players.actor import PlayerActor
from gameproto.tickets import mint_ticket

pytestmark = pytest.mark.django_db(transaction=True)
RECV_TIMEOUT_S = 5


@pytest.fixture(autouse=True)
async def fresh_runtime() -> AsyncIterator[None]:
    """Each test's event loop gets its own gateway runtime, shut down afterwards."""
    yield
    await runtime_module.runtime_reset()


def player() -> str:
    return f"ip{uuid.uuid4().hex[:12]}"


async def connect(player_id: str, query: str = "", **kwargs: Any) -> WebsocketCommunicator:
    ticket = mint_ticket(secret=settings.GAME_JWT_SECRET, sub=player_id)
    comm = WebsocketCommunicator(application, f"/ws/game/?ticket={ticket}{query}", **kwargs)
    connected, _ = await comm.connect(timeout=RECV_TIMEOUT_S)
    assert connected
    return comm


async def recv(comm: WebsocketCommunicator) -> dict[str, Any]:
    return json.loads(await comm.receive_from(timeout=RECV_TIMEOUT_S))


async def send(comm: WebsocketCommunicator, msg: dict[str, Any]) -> None:
    await comm.send_to(text_data=json.dumps(msg))


async def test_welcome_then_state_then_requests() -> None:
    pid = player()
    comm = await connect(pid)
    welcome = await recv(comm)
    assert welcome["type"] == "welcome"
    assert welcome["node"] == settings.GAME_NODE_ID
    assert welcome["heartbeat_s"] == settings.GAME_HEARTBEAT_S
    assert (await recv(comm))["seq"] == 1
    await send(comm, {"type": "move", "x": 1, "y": 2, "id": 5})
    assert await recv(comm) == {
        "type": "state", "seq": 2, "re": 5, "player_id": pid, "x": 1.0, "y": 2.0, "rev": 1,
    }  # fmt: skip
    await send(comm, {"type": "ack", "seq": 2, "id": "a"})
    assert await recv(comm) == {"type": "ok", "seq": 3, "re": "a"}
    await send(comm, {"type": "ping", "ts": 1.5})
    assert await recv(comm) == {"type": "pong", "ts": 1.5}
    await comm.disconnect()


async def test_bad_ticket_is_refused_before_accept() -> None:
    comm = WebsocketCommunicator(application, "/ws/game/?ticket=nope")
    connected, _ = await comm.connect(timeout=RECV_TIMEOUT_S)
    assert not connected


async def test_msgpack_subprotocol_is_negotiated() -> None:
    import msgspec

    comm = await connect(player(), subprotocols=["game.v1.msgpack"])
    frame = await comm.receive_output(timeout=RECV_TIMEOUT_S)
    assert frame["type"] == "websocket.send"
    assert msgspec.msgpack.decode(frame["bytes"])["type"] == "welcome"
    await comm.disconnect()


async def test_a_crashing_handler_answers_internal_and_restarts_only_that_actor(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    original = PlayerActor.on_receive

    async def flaky(self: PlayerActor, msg: Any) -> Any:
        if getattr(msg, "x", None) == 13:
            raise RuntimeError("boom")
        return await original(self, msg)

    monkeypatch.setattr(PlayerActor, "on_receive", flaky)
    victim, bystander = await connect(player()), await connect(player())
    for comm in (victim, bystander):
        await recv(comm)
        await recv(comm)
    await send(victim, {"type": "move", "x": 5, "y": 5, "id": 1})
    assert (await recv(victim))["rev"] == 1
    await send(victim, {"type": "move", "x": 13, "y": 0, "id": 2})
    error = await recv(victim)
    assert (error["type"], error["code"], error["re"]) == ("error", "internal", 2)
    # The restarted actor kept the player's state; the other player never noticed.
    await send(victim, {"type": "state", "id": 3})
    state = await recv(victim)
    assert (state["re"], state["x"], state["rev"]) == (3, 5.0, 1)
    await send(bystander, {"type": "move", "x": 1, "y": 1, "id": 1})
    assert (await recv(bystander))["rev"] == 1
    stats = runtime_module.get_runtime().system.stats()
    assert stats["totals"]["restarts"] == 1
    await victim.disconnect()
    await bystander.disconnect()


async def test_full_mailbox_answers_busy(settings: Any) -> None:
    from actors import MailboxFull

    pid = player()
    comm = await connect(pid)
    await recv(comm)
    await recv(comm)
    (consumer,) = runtime_module.get_runtime().hub.connections
    assert isinstance(consumer, GameConsumer)
    assert consumer.actor is not None
    actor_pid = consumer.actor.pid

    class FullMailbox:
        def tell(self, msg: Any, sender: Any = None) -> None:
            raise MailboxFull(actor_pid, 1024)

    consumer.actor = FullMailbox()  # type: ignore[assignment]
    await send(comm, {"type": "move", "x": 1, "y": 1, "id": "m"})
    error = await recv(comm)
    assert (error["code"], error["re"]) == ("busy", "m")
    await comm.disconnect()


async def test_disconnect_1000_stops_the_actor_and_persists() -> None:
    pid = player()
    comm = await connect(pid)
    await recv(comm)
    await recv(comm)
    await send(comm, {"type": "move", "x": 9, "y": 9, "id": 1})
    await recv(comm)
    runtime = runtime_module.get_runtime()
    ref = runtime.system.lookup(f"player.{pid}")
    assert ref is not None
    await comm.disconnect(code=1000)
    await runtime.system.stop(f"player.{pid}")  # waits for the End the hub sent
    assert runtime.system.lookup(f"player.{pid}") is None
    # Its last state is kept for a quick comeback and queued for the database.
    comm2 = await connect(pid)
    await recv(comm2)
    state = await recv(comm2)
    assert (state["x"], state["rev"]) == (9.0, 1)
    await comm2.disconnect()


async def test_stopping_a_player_announces_offline() -> None:
    from channels.layers import get_channel_layer

    from gamebackend.gateway.hub import PRESENCE_GROUP

    layer = get_channel_layer()
    listener = await layer.new_channel()
    await layer.group_add(PRESENCE_GROUP, listener)
    pid = player()
    comm = await connect(pid)
    await recv(comm)
    await comm.disconnect(code=1000)
    event = await asyncio.wait_for(layer.receive(listener), RECV_TIMEOUT_S)
    assert event == {"type": "player.offline", "player_id": pid}
    await layer.group_discard(PRESENCE_GROUP, listener)


async def test_ended_players_leave_no_bookkeeping_behind() -> None:
    runtime = runtime_module.get_runtime()
    for _ in range(3):
        pid = player()
        comm = await connect(pid)
        await recv(comm)
        await recv(comm)
        await comm.disconnect(code=1000)
        await runtime.system.stop(f"player.{pid}")
    # The hub drops its "ending" mark in a call_soon right after the actor's last step;
    # one loop turn runs it (no timing involved).
    await asyncio.sleep(0)
    hub = runtime.hub
    assert (hub.sessions, hub.by_player, hub.connections) == ({}, {}, set())
    assert not hub._ending
    assert not hub._locks


async def test_an_ack_can_ride_on_any_message() -> None:
    comm = await connect(player())
    await recv(comm)
    await recv(comm)
    await send(comm, {"type": "move", "x": 1, "y": 1, "id": 1, "ack": 1})
    assert (await recv(comm))["seq"] == 2
    (consumer,) = runtime_module.get_runtime().hub.connections
    assert consumer.session is not None
    assert consumer.session.outbox.acked_seq == 1
    await send(comm, {"type": "state", "id": 2, "ack": 99})
    error = await recv(comm)
    assert (error["code"], error["field"], error["re"]) == ("invalid", "ack", 2)
    await comm.disconnect()


async def test_a_block_the_node_missed_closes_the_connected_player_at_the_next_reload() -> None:
    from asgiref.sync import sync_to_async

    from gamebackend.moderation.services import player_block

    pid = player()
    comm = await connect(pid)
    assert (await recv(comm))["type"] == "welcome"
    # Blocked in the database only: this node never heard the kick (pub/sub was down).
    await sync_to_async(player_block)(player_id=pid, minutes=5, reason="cool off")
    await runtime_module.get_runtime().report._refresh_blocks()
    while (out := await comm.receive_output(timeout=RECV_TIMEOUT_S))["type"] == "websocket.send":
        pass
    assert (out["type"], out["code"], out["reason"]) == ("websocket.close", 4000, "cool off")
    assert runtime_module.get_runtime().report.blocks.until(pid) is not None

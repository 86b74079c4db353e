"""The node's room gateway in process: routing, fan-out copies, the node's room cap, idle stop.

Sessions are recording stand-ins (the session itself is tested in test_outbox and the
end-to-end tests); the actor system, the room actors and the scheduler are the real ones.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import gameproto as p
from actors import ActorSystem
from gamebackend.gateway.rooms import RoomGateway

WAIT_S = 5.0


class RecordingSession:
    def __init__(self, player_id: str) -> None:
        self.player_id = player_id
        self.session_id = f"s-{player_id}"
        self.ended = False
        self.got: list[Any] = []
        self.arrived = asyncio.Event()

    async def emit(self, msg: Any) -> None:
        msg.seq = len(self.got) + 1  # numbered per session, like the outbox does
        self.got.append(msg)
        self.arrived.set()

    async def next(self, kind: type, **fields: Any) -> Any:
        async with asyncio.timeout(WAIT_S):
            while True:
                for msg in self.got:
                    if type(msg) is kind and all(getattr(msg, k) == v for k, v in fields.items()):
                        return msg
                self.arrived.clear()
                await self.arrived.wait()


class Gateway(RoomGateway):
    """Tells the test when a room stopped."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.stopped_rooms: asyncio.Queue[str] = asyncio.Queue()

    async def stopped(self, room_id: str, battle_id: str, *, ended: bool) -> None:
        await super().stopped(room_id, battle_id, ended=ended)
        self.stopped_rooms.put_nowait(room_id)


async def no_battle(battle_id: str) -> None:
    return None


@pytest.fixture
async def setup() -> Any:
    async with ActorSystem(node="gw@127.0.0.1:1") as system:
        sessions = {name: RecordingSession(name) for name in ("ann", "ben", "cat")}
        chunks: list[dict[str, Any]] = []
        gateway = Gateway(
            system=system,
            sessions=sessions.get,
            persist=chunks.append,
            load_battle=no_battle,
            idle_s=0.05,
            lease_s=10.0,
            max_rooms=2,
        )
        yield gateway, sessions, chunks
        await gateway.close()


async def join(gateway: RoomGateway, session: RecordingSession, room: str, **kw: Any) -> Any:
    await gateway.room_message(session.player_id, session.session_id, p.Join(room=room, **kw))


async def test_members_get_their_own_copy_of_every_frame(setup: Any) -> None:
    gateway, sessions, _ = setup
    ann, ben = sessions["ann"], sessions["ben"]
    await join(gateway, ann, "r1", id=1)
    await join(gateway, ben, "r1", id=2)
    assert (await ann.next(p.Joined, re=1)).members == ["ann"]
    assert (await ben.next(p.Joined, re=2)).members == ["ann", "ben"]
    frame_a = await ann.next(p.Frame, tick=3)
    frame_b = await ben.next(p.Frame, tick=3)
    assert frame_a is not frame_b  # each session numbers its own copy
    assert frame_a.inputs == frame_b.inputs


async def test_a_message_for_a_room_that_does_not_exist_is_invalid(setup: Any) -> None:
    gateway, sessions, _ = setup
    ann = sessions["ann"]
    await gateway.room_message("ann", ann.session_id, p.Input(room="ghost", tick=0, keys=1, id=7))
    error = await ann.next(p.Error, re=7)
    assert (error.code, error.field) == (p.INVALID, "room")


async def test_an_unknown_sim_is_invalid_create_sim(setup: Any) -> None:
    gateway, sessions, _ = setup
    ann = sessions["ann"]
    await join(gateway, ann, "r1", id=3, create=p.RoomCreate(sim="nope"))
    error = await ann.next(p.Error, re=3)
    assert (error.code, error.field) == (p.INVALID, "create.sim")
    assert "demo" in error.message
    assert gateway.local_rooms == set()


async def test_a_node_hosts_a_bounded_number_of_rooms(setup: Any) -> None:
    gateway, sessions, _ = setup
    ann = sessions["ann"]
    for i, room in enumerate(("r1", "r2", "r3")):
        await join(gateway, ann, room, id=i)
    await ann.next(p.Joined, re=1)
    busy = await ann.next(p.Error, re=2)
    assert busy.code == p.BUSY
    assert gateway.local_rooms == {"r1", "r2"}


async def test_an_idle_room_stops_and_a_later_join_starts_a_new_battle(setup: Any) -> None:
    gateway, sessions, chunks = setup
    ann = sessions["ann"]
    await join(gateway, ann, "r1", id=1)
    first = await ann.next(p.Frame, tick=2)
    await gateway.room_message("ann", ann.session_id, p.Leave(room="r1", id=2))
    await ann.next(p.Ok, re=2)
    assert await asyncio.wait_for(gateway.stopped_rooms.get(), WAIT_S) == "r1"
    assert chunks[-1]["ended"] is True
    battle = chunks[-1]["battle"]
    await join(gateway, ann, "r1", id=3)
    again = await ann.next(p.Joined, re=3)
    assert again.tick == 0
    assert first.tick == 2
    await ann.next(p.Frame, tick=1)
    assert gateway.local_rooms == {"r1"}
    await gateway.room_message("ann", ann.session_id, p.Leave(room="r1", id=4))
    await asyncio.wait_for(gateway.stopped_rooms.get(), WAIT_S)
    assert chunks[-1]["battle"] != battle  # a new battle

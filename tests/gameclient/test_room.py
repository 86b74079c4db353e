"""`Room` bookkeeping against a scripted client (no sockets): joins, gaps, hashes, stalls."""

from __future__ import annotations

from typing import Any

import pytest

import gameproto as p
from gameclient import DEMO, GameError, Room
from gameproto.sims import DemoState


class ScriptedClient:
    """Answers requests from a script and records what the room sends."""

    def __init__(self) -> None:
        self.welcome = p.Welcome(
            session_id="s", player_id="me", node="n", heartbeat_s=15, resumed=False, last_seq=0
        )
        self.sent: list[Any] = []
        self.requests: list[Any] = []
        self.tick = 5
        self.history: list[p.FrameEntry] = []
        self.too_old = False

    async def request(self, msg: Any, **_: Any) -> Any:
        self.requests.append(msg)
        if isinstance(msg, p.Join):
            state = p.RoomSnapshot(tick=self.tick, data=DEMO.to_data(DEMO.initial()))
            return p.Joined(
                seq=1, room=msg.room, tick_rate=20, tick=self.tick, input_delay=2,
                late_policy="shift", max_players=16, members=["me"], sim="demo", state=state,
            )  # fmt: skip
        if isinstance(msg, p.Sync):
            if self.too_old:
                raise GameError("sync_too_old", "too old")
            return p.Frames(
                seq=2, room=msg.room, frames=[f for f in self.history if f.tick >= msg.from_tick]
            )
        return p.Ok(seq=3)

    async def send(self, msg: Any) -> None:
        self.sent.append(msg)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def frame(tick: int, inputs: list[tuple[str, int]] | None = None) -> p.Frame:
    return p.Frame(seq=tick + 10, room="arena", tick=tick, inputs=inputs or [])


async def joined_room(hash_every: int = 0) -> tuple[Room[DemoState], ScriptedClient, Clock]:
    client, clock = ScriptedClient(), Clock()
    room: Room[DemoState] = Room(client, "arena", sim=DEMO, hash_every=hash_every, clock=clock)  # type: ignore[arg-type]
    await room.join()
    return room, client, clock


async def test_frames_are_applied_in_order_and_hashes_reported_every_n_ticks() -> None:
    room, client, clock = await joined_room(hash_every=3)
    state = DEMO.initial()
    for tick in range(5, 12):
        clock.now += 0.05
        assert await room.handle(frame(tick, [("me", 8)]))
        state = DEMO.step(state, tick, [("me", 8)])
    assert room.state == state
    assert room.next_tick == 12
    hashes = [m for m in client.sent if isinstance(m, p.Hash)]
    assert [h.tick for h in hashes] == [5, 8, 11]  # (tick + 1) % 3 == 0
    replay = DEMO.initial()
    for tick in range(5, 12):
        replay = DEMO.step(replay, tick, [("me", 8)])
        if tick in (5, 8, 11):
            assert hashes[[5, 8, 11].index(tick)].h == DEMO.digest(replay)


async def test_a_gap_is_filled_with_sync_and_a_too_old_one_by_joining_again() -> None:
    room, client, _ = await joined_room()
    client.history = [p.FrameEntry(tick=t, inputs=[("me", 2)]) for t in range(5, 9)]
    await room.handle(frame(9))
    assert isinstance(client.requests[-1], p.Sync)
    assert client.requests[-1].from_tick == 5
    assert room.next_tick == 10
    expected = DEMO.initial()
    for t in range(5, 9):
        expected = DEMO.step(expected, t, [("me", 2)])
    assert room.state == DEMO.step(expected, 9, [])
    client.too_old = True
    client.tick = 50
    await room.handle(frame(40))
    assert isinstance(client.requests[-1], p.Join)
    assert room.next_tick == 50  # the re-join's state; the old frame is dropped


async def test_a_new_session_joins_again_and_other_rooms_messages_are_ignored() -> None:
    room, client, _ = await joined_room()
    assert not await room.handle(p.Frame(seq=1, room="other", tick=5, inputs=[]))
    # The welcome of the session the room joined on (still in the app's queue) is no news.
    assert not await room.handle(client.welcome)
    assert [type(r) for r in client.requests] == [p.Join]
    fresh = p.Welcome(
        session_id="s2", player_id="me", node="n", heartbeat_s=15, resumed=False, last_seq=0
    )
    assert await room.handle(fresh)
    assert [type(r) for r in client.requests] == [p.Join, p.Join]
    resumed = p.Welcome(
        session_id="s2", player_id="me", node="n", heartbeat_s=15, resumed=True, last_seq=9
    )
    assert not await room.handle(resumed)
    # Restored on another node: the room still sends to the old node until a re-join.
    restored = p.Welcome(
        session_id="s2", player_id="me", node="m", heartbeat_s=15, resumed=True, last_seq=9,
        restored=True,
    )  # fmt: skip
    assert await room.handle(restored)
    assert [type(r) for r in client.requests] == [p.Join, p.Join, p.Join]


async def test_members_chat_desync_and_stall_detection() -> None:
    room, _, clock = await joined_room()
    await room.handle(p.MemberJoined(seq=1, room="arena", player_id="you", tick=5))
    assert room.members == ["me", "you"]
    await room.handle(p.MemberLeft(seq=2, room="arena", player_id="you", tick=6))
    assert room.members == ["me"]
    await room.handle(p.ChatMessage(seq=3, room="arena", player_id="me", text="hi"))
    await room.handle(p.Desync(seq=4, room="arena", tick=5, digests={"me": 1}, server=2))
    assert [c.text for c in room.chat] == ["hi"]
    assert room.desyncs[0].server == 2
    await room.handle(frame(5))
    assert not room.stalled()
    clock.now += 0.9
    assert not room.stalled()
    clock.now += 0.2
    assert room.stalled()  # over a second without a frame (10 ticks at 20 Hz = 0.5 s)


async def test_inputs_aim_past_the_input_delay_and_need_a_join() -> None:
    client, clock = ScriptedClient(), Clock()
    room: Room[DemoState] = Room(client, "arena", sim=DEMO, clock=clock)  # type: ignore[arg-type]
    with pytest.raises(RuntimeError, match="join"):
        await room.send_input(1)
    await room.join()
    tick = await room.send_input(4)
    assert tick >= 5 + 2
    assert client.sent[-1] == p.Input(room="arena", tick=tick, keys=4)
    assert room.inputs.get(tick) == 4

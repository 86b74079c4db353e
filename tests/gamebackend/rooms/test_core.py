"""The room's lockstep rules as pure logic: membership, inputs, frames, history, desync."""

from __future__ import annotations

from typing import Any

import pytest

import gameproto as p
from gamebackend.rooms.core import RoomConfig, RoomCore, RoomError
from gameproto.rooms import MAX_INPUT_AHEAD, ROOM_HISTORY
from gameproto.sims import DEMO

NODE = "n@127.0.0.1:1"


def deadline(tick: int) -> float:
    return tick / 20


def make(**config: Any) -> RoomCore:
    sim = config.pop("sim_obj", None)
    return RoomCore(RoomConfig("arena", **config), battle_id="b1", sim=sim)


def joined(core: RoomCore, *players: str) -> RoomCore:
    for player in players:
        core.join(player, NODE, f"s-{player}", None)
    return core


def close(core: RoomCore, upto: int) -> list[p.Frame]:
    return core.close_until(upto, deadline(upto), deadline)


def test_join_answers_joined_and_tells_the_others() -> None:
    core = joined(make(), "bob")
    out = core.join("alice", NODE, "s-alice", 7)
    (to1, announce, except1), (to2, reply, _) = out
    assert (to1, except1) == (None, "alice")
    assert announce == p.MemberJoined(seq=0, room="arena", player_id="alice", tick=0)
    assert to2 == "alice"
    assert isinstance(reply, p.Joined)
    assert (reply.re, reply.tick, reply.members, reply.state) == (7, 0, ["bob", "alice"], None)
    # Joining again answers joined again, without a second member_joined.
    again = core.join("alice", NODE, "s-alice-2", 8)
    assert [type(m) for _, m, _ in again] == [p.Joined]
    assert core.members["alice"].session_id == "s-alice-2"


def test_a_full_room_refuses_a_new_member_but_not_a_returning_one() -> None:
    core = joined(make(max_players=2), "a", "b")
    with pytest.raises(RoomError) as refused:
        core.join("c", NODE, "s", None)
    assert refused.value.code == p.ROOM_FULL
    assert len(core.join("a", NODE, "s-a", None)) == 1


def test_every_tick_closes_a_frame_with_inputs_in_player_order() -> None:
    core = joined(make(), "zed", "amy")
    core.input("zed", 1, 8, None)
    core.input("amy", 1, 0, None)  # 0 is an input like any other
    frames = close(core, 2)
    assert [(f.tick, f.inputs) for f in frames] == [(0, ()), (1, (("amy", 0), ("zed", 8))), (2, ())]
    assert core.next_tick == 3


def test_a_second_input_for_a_tick_replaces_the_first() -> None:
    core = joined(make(), "a")
    core.input("a", 0, 1, None)
    core.input("a", 0, 2, None)
    assert close(core, 0)[0].inputs == (("a", 2),)


def test_late_inputs_shift_to_the_next_open_tick_and_are_counted() -> None:
    core = joined(make(late_policy="shift"), "a")
    close(core, 4)
    core.input("a", 2, 5, None)
    assert close(core, 5)[0].inputs == (("a", 5),)
    assert core.metrics.late_inputs == 1


def test_late_inputs_are_dropped_and_counted_with_drop() -> None:
    core = joined(make(late_policy="drop"), "a")
    close(core, 4)
    core.input("a", 2, 5, None)
    assert close(core, 5)[0].inputs == ()
    assert (core.metrics.late_inputs, core.metrics.late_dropped) == (1, 1)


def test_inputs_too_far_ahead_or_from_non_members_are_invalid() -> None:
    core = joined(make(), "a")
    core.input("a", MAX_INPUT_AHEAD, 1, None)  # exactly 128 ahead is fine
    with pytest.raises(RoomError) as ahead:
        core.input("a", MAX_INPUT_AHEAD + 1, 1, None)
    assert (ahead.value.code, ahead.value.field) == (p.INVALID, "tick")
    with pytest.raises(RoomError) as outsider:
        core.input("stranger", 0, 1, None)
    assert (outsider.value.code, outsider.value.field) == (p.INVALID, "room")
    # A request is answered `ok`; a plain input needs no answer.
    assert core.input("a", 3, 1, "r1") == [("a", p.Ok(seq=0, re="r1"), None)]
    assert core.input("a", 3, 1, None) == []


def test_leaving_drops_pending_inputs_and_tells_the_others() -> None:
    core = joined(make(), "a", "b")
    core.input("a", 0, 3, None)
    out = core.leave("a", 5)
    assert [(to, type(m)) for to, m, _ in out] == [("a", p.Ok), (None, p.MemberLeft)]
    assert close(core, 0)[0].inputs == ()
    with pytest.raises(RoomError):
        core.leave("a", None)
    assert core.leave("a", None, quiet=True) == []


def test_history_keeps_128_frames_and_sync_serves_them() -> None:
    core = joined(make(), "a")
    for tick in range(200):
        core.input("a", tick, tick % 16, None)
        close(core, tick)
    assert len(core.history) == ROOM_HISTORY
    ((_, frames, _),) = core.sync("a", 190, "s")
    assert isinstance(frames, p.Frames)
    assert [f.tick for f in frames.frames] == list(range(190, 200))
    assert frames.frames[0].inputs == (("a", 190 % 16),)
    assert core.sync("a", 500, None)[0][1].frames == []  # type: ignore[attr-defined]
    with pytest.raises(RoomError) as old:
        core.sync("a", 199 - ROOM_HISTORY, None)
    assert old.value.code == p.SYNC_TOO_OLD


def test_disagreeing_hashes_raise_one_desync_per_tick() -> None:
    core = joined(make(), "a", "b", "c")
    close(core, 10)
    assert core.hash("a", 5, 111, None) == []
    assert core.hash("b", 5, 111, None) == []
    out = core.hash("c", 5, 222, "h")
    assert out[0] == ("c", p.Ok(seq=0, re="h"), None)
    (_, desync, _) = out[1]
    assert desync == p.Desync(seq=0, room="arena", tick=5, digests={"a": 111, "b": 111, "c": 222})
    assert core.hash("a", 5, 333, None) == []  # once per tick
    assert core.metrics.desyncs == 1
    with pytest.raises(RoomError) as future:
        core.hash("a", 11, 1, None)
    assert future.value.field == "tick"


def test_with_a_sim_the_server_digest_decides_and_late_joiners_get_the_state() -> None:
    core = joined(make(sim="demo", sim_obj=DEMO), "a")
    core.input("a", 0, 8, None)
    close(core, 3)
    state = DEMO.initial()
    for tick, inputs in core.history:
        state = DEMO.step(state, tick, inputs)
    assert core.server_digest(3) == DEMO.digest(state)
    assert core.hash("a", 3, DEMO.digest(state), None) == []
    (_, desync, _) = core.hash("a", 2, 12345, None)[0]
    assert isinstance(desync, p.Desync)
    assert desync.server == core.server_digest(2)
    late = core.join("b", NODE, "s-b", None)[-1][1]
    assert isinstance(late, p.Joined)
    assert late.state == p.RoomSnapshot(tick=4, data=DEMO.to_data(state))


def test_ticks_closed_back_to_back_count_as_overruns_and_jitter_is_recorded() -> None:
    core = make()
    core.close_until(0, deadline(0) + 0.002, deadline)
    core.close_until(4, deadline(4) + 0.001, deadline)
    assert core.metrics.overruns == 3
    assert core.metrics.ticks == 5
    assert core.metrics.jitter_s[0] == pytest.approx(0.002)
    assert core.metrics.jitter_s[-1] == pytest.approx(0.001)
    assert core.stats()["jitter_p99_ms"] > 0


def test_the_replay_log_is_taken_in_batches_with_only_non_empty_frames() -> None:
    core = joined(make(), "a")
    core.input("a", 2, 1, None)
    close(core, 4)
    assert core.take_log() == (0, 4, [(2, (("a", 1),))])
    assert core.take_log() is None
    close(core, 6)
    assert core.take_log() == (5, 6, [])


def test_a_failing_sim_leaves_the_room_at_its_last_frame() -> None:
    class Broken:
        name = "broken"

        def initial(self) -> int:
            return 0

        def step(self, state: int, tick: int, inputs: Any) -> int:
            if tick == 2:
                raise RuntimeError("sim bug")
            return state + 1

        def digest(self, state: int) -> int:
            return state

        def to_data(self, state: int) -> dict[str, Any]:
            return {"n": state}

        def from_data(self, data: Any) -> int:
            return int(data["n"])

    core = joined(make(sim="broken", sim_obj=Broken()), "a")
    core.input("a", 2, 1, None)
    with pytest.raises(RuntimeError):
        close(core, 3)
    assert core.next_tick == 2
    assert core.state == 2
    assert [t for t, _ in core.history] == [0, 1]
    assert core.pending == {}  # tick 2's inputs went into the failed attempt


def test_every_closed_tick_of_a_sim_room_makes_a_new_version_with_the_next_lsn() -> None:
    core = joined(make(sim="demo", sim_obj=DEMO), "a")
    first = core.version
    assert first is not None
    assert (first.lsn, first.state, first.room_id, first.battle_id) == (
        0,
        DEMO.initial(),
        "arena",
        "b1",
    )
    core.input("a", 0, 8, None)
    close(core, 0)
    second = core.version
    assert second is not None
    assert second is not first
    assert second.lsn == 1 == core.next_tick
    # Copy-on-write: the old version still holds the state before tick 0.
    assert first.state == DEMO.initial()
    assert second.state == DEMO.step(DEMO.initial(), 0, [("a", 8)]) == core.state
    close(core, 4)
    assert core.version is not None
    assert core.version.lsn == 5
    payload = core.version.to_json()
    assert payload == {
        "room": "arena",
        "battle": "b1",
        "sim": "demo",
        "tick": 5,
        "lsn": 5,
        "digest": DEMO.digest(core.state),
        "state": DEMO.to_data(core.state),
    }


def test_a_room_re_created_at_a_tick_continues_its_lsn_and_a_plain_room_has_no_version() -> None:
    state = DEMO.step(DEMO.initial(), 0, [("a", 8)])
    core = RoomCore(
        RoomConfig("arena", sim="demo"), battle_id="b1", sim=DEMO, next_tick=40, sim_state=state
    )
    assert core.version is not None
    assert core.version.lsn == 40
    assert core.state == state
    close(core, 40)
    assert core.version.lsn == 41
    plain = make()
    close(plain, 3)
    assert plain.version is None
    assert plain.state is None

"""RoomActor with a recording host: fan-out per node, supervision, idle stop, replay batches.

The host is the port (``rooms.ports.RoomHost``) a real node implements in
``gateway/rooms.py``; here it records what the room asks of it and the test drives the
room's ticks by hand (the scheduler itself is tested on its own clock).
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Mapping, Sequence
from typing import Any

import pytest

import gameproto as p
from actors import ActorSystem
from gamebackend.rooms.actor import ROOM_SUPERVISOR, RoomActor, RoomState
from gamebackend.rooms.core import RoomConfig, RoomCore, Target
from gamebackend.rooms.messages import IdleConfirm, RoomRequest, RoomStatsReq, SnapshotDue
from gamebackend.rooms.scheduler import Registration, Tick, TickTarget
from gamebackend.rooms.sims import register_sim, unregister_sim
from gamebackend.rooms.version import RoomVersion
from gameproto.sims import DEMO, DemoSim, DemoState

HOME = "home@127.0.0.1:1"
OTHER = "other@127.0.0.1:2"
THIRD = "third@127.0.0.1:3"


class RecordingHost:
    def __init__(self) -> None:
        self.node = HOME
        self.now = 0.0
        self.sent: list[tuple[str, list[Target], p.ServerMessage]] = []
        self.target: TickTarget | None = None
        self.registration: Registration | None = None
        self.chunks: list[dict[str, Any]] = []
        self.snapshots: list[tuple[RoomVersion, str]] = []
        self.idle_calls: list[str] = []
        self.stopped_with: list[tuple[str, bool]] = []
        self.stopped_event = asyncio.Event()
        self.idle_event = asyncio.Event()

    def time(self) -> float:
        return self.now

    async def deliver(
        self, room_id: str, by_node: Mapping[str, Sequence[Target]], msg: p.ServerMessage
    ) -> None:
        for node, targets in by_node.items():
            self.sent.append((node, list(targets), msg))

    def schedule(
        self, rate: int, room_id: str, target: TickTarget, first_tick: int
    ) -> Registration:
        self.target = target
        # One slot, one wake-up per tick: Tick(k) makes tick first_tick + k due.
        self.registration = Registration(rate, 0.0, 1 / rate, 1, 0, first_tick)
        return self.registration

    def unschedule(self, rate: int, room_id: str) -> None:
        self.target = None

    def persist(self, chunk: dict[str, Any]) -> None:
        self.chunks.append(chunk)

    def snapshot(self, version: RoomVersion, reason: str) -> None:
        self.snapshots.append((version, reason))

    def idle(self, room_id: str) -> None:
        self.idle_calls.append(room_id)
        self.idle_event.set()

    def idle_cancelled(self, room_id: str) -> None:
        self.idle_calls.append(f"cancelled:{room_id}")

    def stopping(self, room_id: str) -> None:
        pass

    async def stopped(self, room_id: str, battle_id: str, *, ended: bool) -> None:
        self.stopped_with.append((room_id, ended))
        self.stopped_event.set()

    def of_type(self, kind: type) -> list[tuple[str, list[Target], Any]]:
        return [entry for entry in self.sent if type(entry[2]) is kind]


def request(player: str, msg: Any, node: str = HOME) -> RoomRequest:
    return RoomRequest(player, node, f"s-{player}", msg)


async def settle(system: ActorSystem, ref: Any) -> dict[str, Any]:
    """Everything told before has been handled once this ask returns."""
    stats: dict[str, Any] = await ref.ask(RoomStatsReq(), timeout=5.0)
    return stats


@pytest.fixture
async def system() -> Any:
    async with ActorSystem(node=HOME) as system:
        yield system


async def spawn(
    system: ActorSystem, host: RecordingHost, core: RoomCore, idle_s: float = 30.0
) -> Any:
    return await system.spawn(
        RoomActor, RoomState(core), host, idle_s, name=f"room.{core.room_id}",
        supervisor=ROOM_SUPERVISOR,
    )  # fmt: skip


async def test_each_frame_goes_once_to_each_node_with_members(system: ActorSystem) -> None:
    host = RecordingHost()
    ref = await spawn(system, host, RoomCore(RoomConfig("r"), battle_id="b"))
    members = [
        ("h1", HOME),
        ("o1", OTHER),
        ("o2", OTHER),
        ("t1", THIRD),
        ("t2", THIRD),
        ("t3", THIRD),
    ]
    for player, node in members:
        ref.tell(request(player, p.Join(room="r"), node))
    await settle(system, ref)
    host.sent.clear()
    assert host.target is not None
    for k in range(5):
        host.now = k / 20
        host.target(Tick(k))
    await settle(system, ref)
    frames = host.of_type(p.Frame)
    # 5 ticks x 3 nodes: one message per node per tick, naming that node's members.
    assert len(frames) == 15
    by_node: dict[str, list[list[Target]]] = {}
    for node, targets, _ in frames:
        by_node.setdefault(node, []).append(targets)
    assert by_node[OTHER] == [[("o1", "s-o1"), ("o2", "s-o2")]] * 5
    assert by_node[THIRD] == [[("t1", "s-t1"), ("t2", "s-t2"), ("t3", "s-t3")]] * 5
    assert [f.tick for n, _, f in frames if n == HOME] == [0, 1, 2, 3, 4]


async def test_joined_comes_before_any_frame_and_others_hear_member_joined(
    system: ActorSystem,
) -> None:
    host = RecordingHost()
    ref = await spawn(system, host, RoomCore(RoomConfig("r"), battle_id="b"))
    ref.tell(request("a", p.Join(room="r", id=1)))
    await settle(system, ref)
    assert host.target is not None
    host.target(Tick(2))
    ref.tell(request("b", p.Join(room="r", id=2)))
    host.target(Tick(3))
    await settle(system, ref)
    to_b = [msg for node, targets, msg in host.sent if ("b", "s-b") in targets]
    assert isinstance(to_b[0], p.Joined)
    assert to_b[0].tick == 3
    assert to_b[0].re == 2
    assert [m.tick for m in to_b[1:] if isinstance(m, p.Frame)] == [3]
    announces = host.of_type(p.MemberJoined)
    assert [(t, m.player_id) for _, t, m in announces] == [([("a", "s-a")], "b")]


async def test_a_crashed_room_restarts_from_its_last_frame_and_says_so_once(
    system: ActorSystem,
) -> None:
    class FlakySim(DemoSim):
        name = "flaky-test"
        fail_at: int | None = 3

        def step(self, state: DemoState, tick: int, inputs: Any) -> DemoState:
            if tick == self.fail_at:
                self.fail_at = None  # fails once
                raise RuntimeError("simulated bug")
            return super().step(state, tick, inputs)

    sim = FlakySim()
    register_sim(sim)
    try:
        host = RecordingHost()
        core = RoomCore(RoomConfig("r", sim="flaky-test"), battle_id="b", sim=sim)
        ref = await spawn(system, host, core)
        for player in ("a", "b"):
            ref.tell(request(player, p.Join(room="r")))
        ref.tell(request("a", p.Input(room="r", tick=1, keys=8)))
        await settle(system, ref)
        assert host.target is not None
        host.target(Tick(2))  # ticks 0..2 close
        await settle(system, ref)
        host.target(Tick(4))  # tick 3 crashes the room
        stats = await settle(system, ref)
        errors = host.of_type(p.Error)
        # Every member hears it once; the room is back at its last frame and goes on.
        assert sorted(t for _, targets, e in errors for t in targets if e.code == p.INTERNAL) == [
            ("a", "s-a"),
            ("b", "s-b"),
        ]
        assert stats["tick"] == 3
        assert system.stats()["actors"][str(ref.pid)]["restarts"] == 1
        host.target(Tick(5))
        stats = await settle(system, ref)
        assert stats["tick"] == 6
        assert [f.tick for _, t, f in host.of_type(p.Frame) if ("a", "s-a") in t] == [
            0,
            1,
            2,
            3,
            4,
            5,
        ]
        expected = DEMO.initial()
        for tick in range(6):
            expected = DEMO.step(expected, tick, [("a", 8)] if tick == 1 else [])
        assert core.state == expected
    finally:
        unregister_sim("flaky-test")


async def test_an_empty_room_asks_to_stop_after_the_idle_time_and_ends_its_battle(
    system: ActorSystem,
) -> None:
    host = RecordingHost()
    ref = await spawn(system, host, RoomCore(RoomConfig("r"), battle_id="b"), idle_s=0.05)
    ref.tell(request("a", p.Join(room="r")))
    ref.tell(request("a", p.Input(room="r", tick=0, keys=3)))
    await settle(system, ref)
    assert host.target is not None
    host.target(Tick(1))
    ref.tell(request("a", p.Leave(room="r")))
    await settle(system, ref)
    await asyncio.wait_for(host.idle_event.wait(), 5.0)
    assert host.idle_calls == ["r"]
    ref.tell(IdleConfirm())
    await asyncio.wait_for(host.stopped_event.wait(), 5.0)
    assert host.stopped_with == [("r", True)]
    assert host.target is None  # off the scheduler
    last = host.chunks[-1]
    assert last["ended"] is True
    frames = [f for chunk in host.chunks for f in chunk["frames"]]
    assert frames == [[0, [["a", 3]]]]
    assert host.chunks[0]["first_tick"] == 0
    assert last["last_tick"] == 1


async def test_a_join_before_the_idle_confirmation_keeps_the_room(system: ActorSystem) -> None:
    host = RecordingHost()
    ref = await spawn(system, host, RoomCore(RoomConfig("r"), battle_id="b"), idle_s=30)
    ref.tell(request("a", p.Join(room="r")))
    ref.tell(IdleConfirm())
    await settle(system, ref)
    assert host.idle_calls == ["cancelled:r"]
    assert host.stopped_with == []


async def test_a_sim_room_hands_a_snapshot_of_its_version_when_due_and_when_it_stops(
    system: ActorSystem,
) -> None:
    host = RecordingHost()
    core = RoomCore(RoomConfig("r", sim="demo"), battle_id="b", sim=DEMO)
    ref = await spawn(system, host, core, idle_s=3600.0)
    ref.tell(request("a", p.Join(room="r")))
    ref.tell(request("a", p.Input(room="r", tick=0, keys=8)))
    await settle(system, ref)
    assert host.target is not None
    host.target(Tick(2))  # ticks 0..2 close
    ref.tell(SnapshotDue())
    await settle(system, ref)
    assert [(v.lsn, reason) for v, reason in host.snapshots] == [(3, "periodic")]
    taken = host.snapshots[0][0]
    assert taken is core.version  # a reference, not a copy
    ref.tell(SnapshotDue())  # nothing changed since: no new snapshot
    await settle(system, ref)
    assert len(host.snapshots) == 1
    host.target(Tick(4))
    ref.tell(SnapshotDue())
    await settle(system, ref)
    assert [(v.lsn, r) for v, r in host.snapshots] == [(3, "periodic"), (5, "periodic")]
    assert taken.lsn == 3  # the earlier snapshot still holds its version
    # Stopped with a member (node shutdown): a `shutdown` snapshot of the last version.
    await system.stop(ref)
    await asyncio.wait_for(host.stopped_event.wait(), 5.0)
    assert host.snapshots[-1][1] == "shutdown"
    assert host.snapshots[-1][0].lsn == 5


async def test_periodic_room_snapshots_come_from_the_rooms_own_timer(system: ActorSystem) -> None:
    host = RecordingHost()
    core = RoomCore(RoomConfig("r", sim="demo"), battle_id="b", sim=DEMO)
    ref = await system.spawn(
        RoomActor, RoomState(core), host, 3600.0, 0.02, name="room.r", supervisor=ROOM_SUPERVISOR
    )
    await settle(system, ref)
    assert host.target is not None
    host.target(Tick(0))
    await settle(system, ref)
    deadline = asyncio.get_running_loop().time() + 5.0
    while asyncio.get_running_loop().time() < deadline:
        if host.snapshots and host.snapshots[-1][0].lsn == 1:
            break
        await asyncio.sleep(0.01)
    # (The timer may have fired once before tick 0 closed: the initial version, lsn 0.)
    assert [(v.lsn, r) for v, r in host.snapshots] in (
        [(1, "periodic")],
        [(0, "periodic"), (1, "periodic")],
    )
    await asyncio.sleep(0.1)  # several more periods: an unchanged room takes no more
    assert host.snapshots[-1][0].lsn == 1
    assert len(host.snapshots) <= 2


async def test_an_ended_sim_room_takes_a_logout_snapshot_and_a_plain_room_takes_none(
    system: ActorSystem,
) -> None:
    for room, sim, expected in (("r1", "demo", [(2, "logout")]), ("r2", None, [])):
        host = RecordingHost()
        core = RoomCore(RoomConfig(room, sim=sim), battle_id="b", sim=DEMO if sim else None)
        ref = await spawn(system, host, core, idle_s=3600.0)
        ref.tell(request("a", p.Join(room=room)))
        await settle(system, ref)
        assert host.target is not None
        host.target(Tick(1))
        ref.tell(request("a", p.Leave(room=room)))
        ref.tell(SnapshotDue())
        await settle(system, ref)
        ref.tell(IdleConfirm())
        await asyncio.wait_for(host.stopped_event.wait(), 5.0)
        # The periodic one (lsn 2) and the stop one at the same lsn: a room that ends
        # always leaves its final version.
        got = [(v.lsn, r) for v, r in host.snapshots]
        assert got == ([(2, "periodic"), *expected] if sim else [])


async def test_an_idle_room_closes_its_tick_within_the_schedulers_call(
    system: ActorSystem,
) -> None:
    host = RecordingHost()
    ref = await spawn(system, host, RoomCore(RoomConfig("r"), battle_id="b"))
    ref.tell(request("h1", p.Join(room="r")))
    await settle(system, ref)
    assert host.target is not None
    host.target(Tick(0))
    # No await in between: the frame was closed and delivered inside the call (the room
    # was idle, and a Tick is one of its eager messages).
    assert [msg.tick for _, _, msg in host.of_type(p.Frame)] == [0]


async def test_the_replay_log_is_flushed_every_flush_period_of_ticks(
    system: ActorSystem,
) -> None:
    host = RecordingHost()
    state = RoomState(RoomCore(RoomConfig("r"), battle_id="b"))
    every = state.flush_every
    assert every == 20  # REPLAY_FLUSH_S (1 s) at the default 20 Hz
    assert 1 <= state.flush_tick <= every  # the first flush at a random phase
    first_flush = state.flush_tick
    ref = await system.spawn(
        RoomActor, state, host, 30.0, name="room.r", supervisor=ROOM_SUPERVISOR
    )
    ref.tell(request("h1", p.Join(room="r")))
    await settle(system, ref)
    assert host.target is not None
    for k in range(3 * every):
        ref.tell(request("h1", p.Input(room="r", tick=k + 2, keys=k + 1)))
        host.target(Tick(k))
    await settle(system, ref)
    ranges = [(chunk["first_tick"], chunk["last_tick"]) for chunk in host.chunks]
    # Back to back and in order: the first ends at the random phase, the others span
    # exactly one flush period each, and nothing is flushed twice.
    assert ranges[0] == (0, first_flush - 1)
    for (_, last), (first, end) in itertools.pairwise(ranges):
        assert first == last + 1
        assert end - first + 1 == every
    flushed = [tick for chunk in host.chunks for tick, _ in chunk["frames"]]
    assert flushed == sorted(set(flushed))
    assert flushed == list(range(2, ranges[-1][1] + 1))  # every tick with an input

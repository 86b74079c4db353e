"""The tick scheduler on an injected clock: one timing wheel per rate serves any number of rooms."""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable
from typing import Any

import pytest

from gamebackend.rooms.scheduler import RateScheduler, Registration, Tick, TickSchedulers


class ManualHandle:
    def __init__(self) -> None:
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class ManualLoop:
    """``time`` and ``call_at`` on a clock that moves only when the test says so."""

    def __init__(self, now: float = 100.0) -> None:
        self.now = now
        self._timers: list[
            tuple[float, int, ManualHandle, Callable[..., Any], tuple[Any, ...]]
        ] = []
        self._seq = itertools.count()
        self.fired = 0

    def time(self) -> float:
        return self.now

    def call_at(self, when: float, callback: Callable[..., Any], *args: Any) -> ManualHandle:
        handle = ManualHandle()
        heapq.heappush(self._timers, (when, next(self._seq), handle, callback, args))
        return handle

    def pending(self) -> int:
        return sum(1 for t in self._timers if not t[2].cancelled)

    def run_until(self, until: float, *, late_by: float = 0.0) -> None:
        """Fire due timers in order; each fires ``late_by`` after its time (loop lag)."""
        while self._timers and self._timers[0][0] <= until:
            when, _, handle, callback, args = heapq.heappop(self._timers)
            if handle.cancelled:
                continue
            self.now = max(self.now, when + late_by)
            self.fired += 1
            callback(*args)
        self.now = max(self.now, until)


class Room:
    """Records the ticks it would close, the way RoomActor uses a registration."""

    def __init__(self, loop: ManualLoop, next_tick: int = 0) -> None:
        self.loop = loop
        self.registration: Registration | None = None
        self.next_tick = next_tick
        self.closed: list[tuple[int, float]] = []  # (tick, actual close time)
        self.wakes = 0

    def __call__(self, wake: Tick) -> None:
        self.wakes += 1
        assert self.registration is not None
        due = self.registration.due(wake)
        while self.next_tick <= due:
            self.closed.append((self.next_tick, self.loop.now))
            self.next_tick += 1

    @property
    def reg(self) -> Registration:
        assert self.registration is not None
        return self.registration


@pytest.fixture
def loop() -> ManualLoop:
    return ManualLoop()


def add(scheduler: RateScheduler, key: str, loop: ManualLoop, first_tick: int = 0) -> Room:
    room = Room(loop, first_tick)
    room.registration = scheduler.add(key, room, first_tick)
    return room


def test_deadlines_are_start_plus_n_over_rate_with_no_drift(loop: ManualLoop) -> None:
    scheduler = RateScheduler(20, loop)
    room = add(scheduler, "a", loop)
    # Every wake-up comes 3 ms late: lateness never accumulates into later deadlines.
    loop.run_until(room.reg.start + 1000 / 20, late_by=0.003)
    assert [tick for tick, _ in room.closed] == list(range(1001))
    for tick, closed_at in room.closed:
        assert closed_at == pytest.approx(room.reg.start + tick / 20 + 0.003)
    assert room.reg.deadline(1000) == pytest.approx(room.reg.start + 50.0)
    assert room.reg.start - 100.0 <= 1 / 20  # the first tick comes within one period


def test_a_thousand_rooms_cost_one_timer_per_occupied_slot_not_per_room(loop: ManualLoop) -> None:
    scheduler = RateScheduler(20, loop)
    assert scheduler.slots == 50  # 1 ms apart at 20 Hz
    rooms = [add(scheduler, f"r{i}", loop) for i in range(1000)]
    start = max(r.reg.start for r in rooms)
    fired = loop.fired
    loop.run_until(start + 99 / 20)
    # 100 periods x 50 slots: 5,000 wake-ups for 100,000 room ticks (not 100,000 timers).
    assert loop.fired - fired == pytest.approx(100 * 50, abs=50)
    assert all(room.next_tick >= 100 for room in rooms)
    assert all(room.wakes == room.next_tick for room in rooms)  # one call per tick each
    # Rooms are spread evenly: 20 per slot, so a wake-up serves 20 rooms, not 1,000.
    per_slot: dict[int, list[Room]] = {}
    for room in rooms:
        per_slot.setdefault(
            round((room.reg.start - scheduler.origin) / scheduler.width) % 50, []
        ).append(room)
    assert sorted(len(v) for v in per_slot.values()) == [20] * 50
    assert loop.pending() == 1


def test_one_slot_means_one_wake_up_per_period_for_every_room(loop: ManualLoop) -> None:
    scheduler = RateScheduler(20, loop, slot_s=1 / 20)
    assert scheduler.slots == 1
    rooms = [add(scheduler, f"r{i}", loop) for i in range(1000)]
    start = rooms[0].reg.start
    assert all(room.reg.start == start for room in rooms)
    fired = loop.fired
    loop.run_until(start + 99 / 20)
    assert loop.fired - fired == 100
    assert scheduler.wakeups == 100
    assert all(room.next_tick == 100 for room in rooms)


def test_a_room_starts_within_one_period_in_the_least_loaded_slot(loop: ManualLoop) -> None:
    scheduler = RateScheduler(10, loop, slot_s=0.01)  # 10 slots of 10 ms
    first = add(scheduler, "first", loop)
    loop.run_until(loop.now + 0.25)
    second = add(scheduler, "second", loop)
    assert 0 < second.reg.start - loop.now <= 0.1 + 1e-9
    # Different slots: their deadlines are offset by a whole number of slots.
    offset = (second.reg.start - first.reg.start) / scheduler.width
    assert offset == pytest.approx(round(offset))
    assert round(offset) % scheduler.slots != 0
    loop.run_until(second.reg.start + 0.5)
    assert second.closed[0][0] == 0
    assert second.next_tick == 6


def test_a_late_wake_up_closes_the_missed_ticks_back_to_back(loop: ManualLoop) -> None:
    scheduler = RateScheduler(20, loop)
    room = add(scheduler, "a", loop)
    other = add(scheduler, "b", loop)
    loop.run_until(max(room.reg.start, other.reg.start))
    assert (room.next_tick, other.next_tick) == (1, 1)
    # The loop is blocked for 0.26 s: one wake-up serves both rooms' missed turns.
    loop.now = room.reg.deadline(1) + 0.21
    wakes = scheduler.wakeups
    loop.run_until(loop.now)
    assert scheduler.wakeups == wakes + 1
    assert (room.next_tick, other.next_tick) == (6, 6)
    assert scheduler.missed > 0
    # And it goes on from its own deadlines, not from the late wake-up.
    loop.run_until(room.reg.deadline(6))
    assert room.next_tick == 7
    assert room.closed[-1][1] == pytest.approx(room.reg.deadline(6))


def test_an_early_fire_within_the_clock_resolution_counts(loop: ManualLoop) -> None:
    scheduler = RateScheduler(20, loop)
    room = add(scheduler, "a", loop)
    loop.run_until(room.reg.start, late_by=-1e-7)
    assert room.next_tick == 1


def test_a_room_restored_mid_battle_goes_on_from_its_next_tick(loop: ManualLoop) -> None:
    scheduler = RateScheduler(20, loop)
    room = add(scheduler, "restored", loop, first_tick=500)  # its log ends at tick 499
    assert 0 < room.reg.deadline(500) - loop.now <= 1 / 20 + 1e-9
    loop.run_until(room.reg.deadline(502))
    assert [tick for tick, _ in room.closed] == [500, 501, 502]


def test_removing_the_last_room_cancels_the_timer(loop: ManualLoop) -> None:
    scheduler = RateScheduler(20, loop)
    add(scheduler, "a", loop)
    add(scheduler, "b", loop)
    scheduler.remove("a")
    assert loop.pending() == 1
    scheduler.remove("b")
    assert loop.pending() == 0
    add(scheduler, "c", loop)
    with pytest.raises(ValueError, match="already scheduled"):
        add(scheduler, "c", loop)


def test_one_failing_target_does_not_stop_the_others(loop: ManualLoop) -> None:
    scheduler = RateScheduler(20, loop, slot_s=1 / 20)

    def broken(wake: Tick) -> None:
        raise RuntimeError("boom")

    scheduler.add("broken", broken)
    room = add(scheduler, "ok", loop)
    loop.run_until(room.reg.deadline(3))
    assert room.next_tick == 4


def test_one_wheel_per_rate(loop: ManualLoop) -> None:
    schedulers = TickSchedulers(loop, slot_s=1.0)  # one slot each: one wake-up per tick
    seen: dict[str, int] = {}
    for rate in (20, 20, 30, 60):
        key = f"{rate}-{len(seen)}"
        seen[key] = 0

        def target(wake: Tick, key: str = key) -> None:
            seen[key] += 1

        schedulers.add(rate, key, target)
    assert sorted(schedulers.rates()) == [20, 30, 60]
    loop.run_until(loop.now + 1.0)
    # One timer per rate: 20 + 30 + 60 wake-ups in one second, whatever the room count.
    assert loop.fired == pytest.approx(20 + 30 + 60, abs=3)
    assert seen["20-0"] == seen["20-1"] == pytest.approx(20, abs=1)
    assert seen["60-3"] == pytest.approx(60, abs=1)
    schedulers.remove(30, "30-2")
    assert sorted(schedulers.rates()) == [20, 60]

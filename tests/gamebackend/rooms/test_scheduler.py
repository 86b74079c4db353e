"""The tick scheduler on an injected clock: one wake-up per grid point for any number of rooms."""

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
        self.armed = 0

    def time(self) -> float:
        return self.now

    def call_at(self, when: float, callback: Callable[..., Any], *args: Any) -> ManualHandle:
        handle = ManualHandle()
        self.armed += 1
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
            callback(*args)
        self.now = max(self.now, until)


class Room:
    """Records the ticks it would close, the way RoomActor uses a registration."""

    def __init__(self, loop: ManualLoop) -> None:
        self.loop = loop
        self.registration: Registration | None = None
        self.next_tick = 0
        self.closed: list[tuple[int, float]] = []  # (tick, actual close time)
        self.wakes = 0

    def __call__(self, wake: Tick) -> None:
        self.wakes += 1
        assert self.registration is not None
        due = self.registration.due(wake)
        while self.next_tick <= due:
            self.closed.append((self.next_tick, self.loop.now))
            self.next_tick += 1


@pytest.fixture
def loop() -> ManualLoop:
    return ManualLoop()


def add(scheduler: RateScheduler, key: str, loop: ManualLoop) -> Room:
    room = Room(loop)
    room.registration = scheduler.add(key, room)
    return room


def test_deadlines_are_start_plus_n_over_rate_with_no_drift(loop: ManualLoop) -> None:
    scheduler = RateScheduler(20, loop)
    room = add(scheduler, "a", loop)
    reg = room.registration
    assert reg is not None
    # Every wake-up comes 3 ms late: lateness never accumulates into later deadlines.
    loop.run_until(reg.start + 1000 / 20, late_by=0.003)
    assert [tick for tick, _ in room.closed] == list(range(1001))
    for tick, closed_at in room.closed:
        assert closed_at == pytest.approx(reg.start + tick / 20 + 0.003)
    assert reg.deadline(1000) == pytest.approx(reg.start + 50.0)


def test_many_rooms_of_one_rate_share_one_wake_up_per_tick(loop: ManualLoop) -> None:
    scheduler = RateScheduler(20, loop)
    rooms = [add(scheduler, f"r{i}", loop) for i in range(1000)]
    start = max(r.registration.start for r in rooms if r.registration)
    armed_before = loop.armed
    loop.run_until(start + 99 / 20)
    # 100 grid points, 100 wake-ups and timers, for 1,000 rooms (100,000 ticks closed).
    assert scheduler.wakeups == 100
    assert loop.armed - armed_before == 100
    assert all(room.wakes == 100 and room.next_tick == 100 for room in rooms)
    assert loop.pending() == 1


def test_a_room_joins_at_the_next_grid_point(loop: ManualLoop) -> None:
    scheduler = RateScheduler(10, loop)
    first = add(scheduler, "first", loop)
    loop.run_until(loop.now + 0.25)  # between grid points
    second = add(scheduler, "second", loop)
    assert first.registration
    assert second.registration
    assert second.registration.start > loop.now
    assert second.registration.start - loop.now <= 0.1 + 1e-9
    # Both rooms' deadlines sit on the same grid: the second one's tick 0 is a grid point.
    offset = (second.registration.start - first.registration.start) * 10
    assert offset == pytest.approx(round(offset))
    loop.run_until(second.registration.start + 0.5)
    assert second.closed[0][0] == 0
    assert second.next_tick == 6


def test_a_late_wake_up_closes_the_missed_ticks_back_to_back(loop: ManualLoop) -> None:
    scheduler = RateScheduler(20, loop)
    room = add(scheduler, "a", loop)
    assert room.registration is not None
    loop.run_until(room.registration.start)
    assert room.next_tick == 1
    # The loop is blocked for 0.26 s: the next wake-up covers five grid points at once.
    loop.now = room.registration.deadline(1) + 0.21
    loop.run_until(loop.now)
    assert room.next_tick == 6
    assert room.wakes == 2
    assert scheduler.missed == 4
    # And it goes on from the grid, not from the late wake-up.
    loop.run_until(room.registration.deadline(6))
    assert room.next_tick == 7


def test_an_early_fire_within_the_clock_resolution_counts(loop: ManualLoop) -> None:
    scheduler = RateScheduler(20, loop)
    room = add(scheduler, "a", loop)
    assert room.registration is not None
    loop.run_until(room.registration.start, late_by=-1e-7)
    assert room.next_tick == 1


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
    scheduler = RateScheduler(20, loop)

    def broken(wake: Tick) -> None:
        raise RuntimeError("boom")

    scheduler.add("broken", broken)
    room = add(scheduler, "ok", loop)
    assert room.registration is not None
    loop.run_until(room.registration.deadline(3))
    assert room.next_tick == 4


def test_one_scheduler_per_rate(loop: ManualLoop) -> None:
    schedulers = TickSchedulers(loop)
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
    assert loop.armed == pytest.approx(20 + 30 + 60, abs=3)
    assert seen["20-0"] == seen["20-1"] == pytest.approx(20, abs=1)
    assert seen["60-3"] == pytest.approx(60, abs=1)
    schedulers.remove(30, "30-2")
    assert sorted(schedulers.rates()) == [20, 60]


def test_a_room_restored_mid_battle_goes_on_from_its_next_tick(loop: ManualLoop) -> None:
    scheduler = RateScheduler(20, loop)
    room = Room(loop)
    room.next_tick = 500  # re-created from a replay log that ends at tick 499
    room.registration = scheduler.add("restored", room, first_tick=500)
    assert room.registration.deadline(500) > loop.now
    assert room.registration.deadline(500) - loop.now <= 1 / 20 + 1e-9
    loop.run_until(room.registration.deadline(502))
    assert [tick for tick, _ in room.closed] == [500, 501, 502]

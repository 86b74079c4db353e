"""Tick scheduling for many rooms: one timing wheel per tick rate, not one task per room.

A rate's wheel turns once per tick period and has ``slots`` slots (``SLOT_S`` = 1 ms
apart: 50 at 20 Hz, 16 at 60 Hz). Wake-up ``j`` is due at ``origin + j * width`` on the
loop's monotonic clock (``width = period / slots``), always computed from the origin,
never "last wake + period", so lateness never accumulates as drift. A room joins the
least loaded slot; its tick ``n`` is due at ``start + n / rate``. One loop timer per wheel
serves every room of the due slot: 1,000 rooms at 20 Hz cost at most 50 timer wake-ups per
tick period (one per occupied slot), whatever the number of rooms, each handing ~20 rooms
a ``Tick``. Spreading rooms over the period keeps each wake-up's batch short, which is
what bounds the tick jitter; ``slot_s = period`` gives a single wake-up per tick period
for all rooms of the rate (a longer batch, see docs/BENCHMARKS.md).

When the loop was late, the wake-up serves every slot whose time passed, and each room
is told the latest wheel index: it closes the ticks it missed back to back (counting them
as overruns, see ``rooms.core``).

Pure logic (no Django, no asyncio import): the loop is anything with ``time()`` and
``call_at(when, callback)``, so tests drive it with a manual clock.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, Protocol

__all__ = ["SLOT_S", "Loop", "RateScheduler", "Registration", "Tick", "TickSchedulers"]

logger = logging.getLogger(__name__)

# Distance between two wheel slots: rooms of one rate are spread over the period in steps
# of this, so one wake-up serves only the rooms of one slot.
SLOT_S: Final = 0.001
# asyncio runs a timer up to its clock resolution early; a wake-up that early must still
# count as its slot (a fraction of a slot, far below any tick period).
EARLY_FIRE_TOLERANCE: Final = 1e-3


class Handle(Protocol):
    def cancel(self) -> None: ...


class Loop(Protocol):
    """The part of an asyncio event loop the scheduler uses."""

    def time(self) -> float: ...

    def call_at(self, when: float, callback: Callable[..., Any], *args: Any) -> Handle: ...


@dataclass(frozen=True, slots=True)
class Tick:
    """Wake-up ``j`` of a rate's wheel (shared by every room told about it)."""

    j: int


TickTarget = Callable[[Tick], None]


@dataclass(frozen=True, slots=True)
class Registration:
    """Where a room sits on its rate's wheel: its tick ``first_tick`` is wheel index
    ``first_j``, and every following tick ``slots`` indexes later."""

    rate: int
    origin: float
    width: float
    slots: int
    first_j: int
    first_tick: int

    @property
    def start(self) -> float:
        """Loop time at which the room's tick 0 is (or would have been) due."""
        return self.deadline(0)

    def deadline(self, tick: int) -> float:
        """Loop time at which tick ``tick`` of the room is due (drift-free)."""
        return self.origin + (self.first_j + (tick - self.first_tick) * self.slots) * self.width

    def due(self, wake: Tick) -> int:
        """The room's latest due tick at wake-up ``wake`` (``first_tick - 1``: none yet)."""
        return self.first_tick + (wake.j - self.first_j) // self.slots


class RateScheduler:
    """Every room of one tick rate on one timing wheel, turned by one loop timer."""

    def __init__(self, rate: int, loop: Loop, *, slot_s: float = SLOT_S) -> None:
        if rate < 1:
            raise ValueError("tick rate must be >= 1")
        self.rate = rate
        self._loop = loop
        self.origin = loop.time()
        self.slots = max(1, round(1.0 / rate / slot_s)) if slot_s > 0 else 1
        self.width = 1.0 / rate / self.slots
        # Per slot: room key -> target, in join order.
        self._wheel: list[dict[str, TickTarget]] = [{} for _ in range(self.slots)]
        self._slot_of: dict[str, int] = {}
        self._handle: Handle | None = None
        self._armed_j = 0
        self._served_j = self._index(self.origin)  # the last wheel index served
        self.wakeups = 0
        self.missed = 0  # wheel indexes the loop was too late to wake for separately

    def __len__(self) -> int:
        return len(self._slot_of)

    def _index(self, now: float) -> int:
        """The latest wheel index due at ``now``."""
        return math.floor((now - self.origin) / self.width + EARLY_FIRE_TOLERANCE)

    def add(self, key: str, target: TickTarget, first_tick: int = 0) -> Registration:
        """Put a room in the least loaded slot; its tick ``first_tick`` is due at that
        slot's next turn (within one period; a room re-created mid-battle goes on from its
        next tick). ``target`` is called at every turn of the slot from then on."""
        if key in self._slot_of:
            raise ValueError(f"{key!r} is already scheduled")
        now_j = self._index(self._loop.time())
        slots = self.slots
        # Least loaded slot; among those, the one coming up soonest.
        slot = min(range(slots), key=lambda s: (len(self._wheel[s]), (s - now_j - 1) % slots))
        first_j = now_j + 1 + (slot - now_j - 1) % slots
        self._wheel[slot][key] = target
        self._slot_of[key] = slot
        if self._handle is None or first_j < self._armed_j:
            self._arm(first_j)
        return Registration(self.rate, self.origin, self.width, slots, first_j, first_tick)

    def remove(self, key: str) -> None:
        slot = self._slot_of.pop(key, None)
        if slot is None:
            return
        del self._wheel[slot][key]
        if not self._slot_of and self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _arm(self, j: int) -> None:
        if self._handle is not None:
            self._handle.cancel()
        self._armed_j = j
        self._handle = self._loop.call_at(self.origin + j * self.width, self._wake)

    def _next_occupied(self, after_j: int) -> int | None:
        slots = self.slots
        wheel = self._wheel
        for step in range(1, slots + 1):
            if wheel[(after_j + step) % slots]:
                return after_j + step
        return None

    def _wake(self) -> None:
        self._handle = None
        j = self._index(self._loop.time())
        if j < self._armed_j:
            # Woken before the slot even with the tolerance (should not happen).
            self._arm(self._armed_j)
            return
        self.wakeups += 1
        slots = self.slots
        first = max(self._served_j + 1, j - slots + 1)
        self.missed += max(0, j - self._armed_j)
        self._served_j = j
        wake = Tick(j)
        # Every slot whose time came since the last wake-up (all of them if a whole turn
        # passed); a room added by a callback during this loop waits for its own turn.
        for i in range(first, j + 1):
            bucket = self._wheel[i % slots]
            if not bucket:
                continue
            for key, target in list(bucket.items()):
                try:
                    target(wake)
                except Exception:
                    # A room's failure must never stop the clock of every other room.
                    logger.exception("tick target %s failed", key)
        if self._slot_of and self._handle is None:
            following = self._next_occupied(j)
            if following is not None:
                self._arm(following)


class TickSchedulers:
    """One ``RateScheduler`` per tick rate in use (created on demand, dropped when empty)."""

    def __init__(self, loop: Loop, *, slot_s: float = SLOT_S) -> None:
        self._loop = loop
        self._slot_s = slot_s
        self._by_rate: dict[int, RateScheduler] = {}

    def add(self, rate: int, key: str, target: TickTarget, first_tick: int = 0) -> Registration:
        scheduler = self._by_rate.get(rate)
        if scheduler is None:
            scheduler = self._by_rate[rate] = RateScheduler(rate, self._loop, slot_s=self._slot_s)
        return scheduler.add(key, target, first_tick)

    def remove(self, rate: int, key: str) -> None:
        scheduler = self._by_rate.get(rate)
        if scheduler is None:
            return
        scheduler.remove(key)
        if not len(scheduler):
            del self._by_rate[rate]

    def rates(self) -> dict[int, RateScheduler]:
        return dict(self._by_rate)

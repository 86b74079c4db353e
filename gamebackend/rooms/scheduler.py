"""Tick scheduling for many rooms: one timer per tick rate, not one sleeping task per room.

Every room of one tick rate is placed on that rate's grid: wake-up ``k`` is due at
``origin + k / rate`` on the loop's monotonic clock, computed from the origin every time
(never "last wake + period", so lateness never accumulates as drift). A room joins at the
next grid point; its tick ``n`` is due at ``start + n / rate``, i.e. at grid point
``first + n``. So 1,000 rooms at 20 Hz cost one timer wake-up per 50 ms, which hands each
room a ``Tick`` (one shared object per wake-up) and returns.

When the loop was late by more than a period, the wake-up covers every grid point that
passed: each room is told the latest one and closes the missing ticks back to back
(counting them as overruns, see ``rooms.core``).

Pure logic (no Django, no asyncio import): the loop is anything with ``time()`` and
``call_at(when, callback)``, so tests drive it with a manual clock.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, Protocol

__all__ = ["Loop", "RateScheduler", "Registration", "Tick", "TickSchedulers"]

logger = logging.getLogger(__name__)

# asyncio runs a timer up to its clock resolution early; a wake-up that early must still
# count as its grid point (a fraction of a tick, far below any tick period).
EARLY_FIRE_TOLERANCE: Final = 1e-3


class Handle(Protocol):
    def cancel(self) -> None: ...


class Loop(Protocol):
    """The part of an asyncio event loop the scheduler uses."""

    def time(self) -> float: ...

    def call_at(self, when: float, callback: Callable[..., Any], *args: Any) -> Handle: ...


@dataclass(frozen=True, slots=True)
class Tick:
    """Wake-up ``k`` of a rate's grid (shared by every room told about it)."""

    k: int


TickTarget = Callable[[Tick], None]


@dataclass(frozen=True, slots=True)
class Registration:
    """Where a room sits on its rate's grid: its tick ``n`` is grid point ``first + n``
    (``first`` is negative for a room that started mid-battle)."""

    rate: int
    origin: float
    first: int

    @property
    def start(self) -> float:
        """Loop time at which the room's tick 0 is (or would have been) due."""
        return self.deadline(0)

    def deadline(self, tick: int) -> float:
        """Loop time at which tick ``tick`` of the room is due (drift-free)."""
        return self.origin + (self.first + tick) / self.rate

    def due(self, wake: Tick) -> int:
        """The room's latest due tick at grid wake-up ``wake`` (-1: none yet)."""
        return wake.k - self.first


class RateScheduler:
    """Every room of one tick rate, woken together on one grid by one loop timer."""

    def __init__(self, rate: int, loop: Loop) -> None:
        if rate < 1:
            raise ValueError("tick rate must be >= 1")
        self.rate = rate
        self._loop = loop
        self.origin = loop.time()
        self._targets: dict[str, tuple[int, TickTarget]] = {}
        self._handle: Handle | None = None
        self._next_k = 1
        self.wakeups = 0
        self.missed = 0  # grid points the loop was too late to wake for separately

    def __len__(self) -> int:
        return len(self._targets)

    def _grid_index(self, now: float) -> int:
        """The latest grid point due at ``now``."""
        return math.floor((now - self.origin) * self.rate + EARLY_FIRE_TOLERANCE)

    def add(self, key: str, target: TickTarget, first_tick: int = 0) -> Registration:
        """Put a room on the grid: its tick ``first_tick`` is due at the next grid point
        (a room re-created mid-battle goes on from its next tick). ``target`` is called
        at every wake-up from then on."""
        if key in self._targets:
            raise ValueError(f"{key!r} is already scheduled")
        start_k = self._grid_index(self._loop.time()) + 1
        self._targets[key] = (start_k, target)
        if self._handle is None:
            self._arm(start_k)
        return Registration(self.rate, self.origin, start_k - first_tick)

    def remove(self, key: str) -> None:
        self._targets.pop(key, None)
        if not self._targets and self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _arm(self, k: int) -> None:
        self._next_k = k
        self._handle = self._loop.call_at(self.origin + k / self.rate, self._wake)

    def _wake(self) -> None:
        self._handle = None
        k = self._grid_index(self._loop.time())
        if k < self._next_k:
            # Woken before the grid point even with the tolerance (should not happen).
            self._arm(self._next_k)
            return
        self.wakeups += 1
        self.missed += k - self._next_k
        wake = Tick(k)
        # A target added by a callback during this loop joins at a later grid point.
        for key, (start_k, target) in list(self._targets.items()):
            if start_k > k:
                continue
            try:
                target(wake)
            except Exception:
                # A room's failure must never stop the clock of every other room.
                logger.exception("tick target %s failed", key)
        if self._targets and self._handle is None:
            self._arm(k + 1)


class TickSchedulers:
    """One ``RateScheduler`` per tick rate in use (created on demand, dropped when empty)."""

    def __init__(self, loop: Loop) -> None:
        self._loop = loop
        self._by_rate: dict[int, RateScheduler] = {}

    def add(self, rate: int, key: str, target: TickTarget, first_tick: int = 0) -> Registration:
        scheduler = self._by_rate.get(rate)
        if scheduler is None:
            scheduler = self._by_rate[rate] = RateScheduler(rate, self._loop)
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

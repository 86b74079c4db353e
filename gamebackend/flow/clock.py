"""Time sources for flow control.

Everything in ``gamebackend.flow`` reads time through a :class:`Clock` (or takes a ``now``
argument) so tests drive it with a :class:`ManualClock` instead of sleeping, and so the hot
path never touches wall-clock time, which can jump.
"""

from __future__ import annotations

import time
from typing import Protocol, runtime_checkable

__all__ = ["MONOTONIC", "Clock", "ManualClock", "MonotonicClock"]


@runtime_checkable
class Clock(Protocol):
    """A source of monotonic seconds (arbitrary origin, never goes backwards)."""

    def now(self) -> float: ...


class MonotonicClock:
    """The process's monotonic clock (``time.monotonic``)."""

    __slots__ = ()

    # A staticmethod bound straight to the C function keeps ``clock.now()`` one call deep.
    now = staticmethod(time.monotonic)


class ManualClock:
    """A clock that only moves when told to: deterministic time for tests and simulations."""

    __slots__ = ("_t",)

    def __init__(self, start: float = 0.0) -> None:
        self._t = float(start)

    def now(self) -> float:
        return self._t

    def advance(self, seconds: float) -> float:
        """Move forward by ``seconds`` (must not be negative); return the new time."""
        if seconds < 0:
            raise ValueError(f"a monotonic clock cannot go back ({seconds} s)")
        self._t += seconds
        return self._t

    def set(self, t: float) -> None:
        """Jump to ``t`` (not earlier than now)."""
        if t < self._t:
            raise ValueError(f"a monotonic clock cannot go back ({t} < {self._t})")
        self._t = float(t)


MONOTONIC: Clock = MonotonicClock()

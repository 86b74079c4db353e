"""Timers that deliver a message to an actor's own mailbox, built on loop.call_at handles.

A pending timer is a TimerHandle plus this small object: no task, no coroutine.
"""

from __future__ import annotations

import asyncio
import math
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._lifecycle import CellLifecycle


class Timer:
    """Handle returned by `schedule_once` / `schedule_every`; `cancel()` is idempotent."""

    __slots__ = ("_cell", "_handle", "_interval", "_msg", "_start", "_ticks")

    def __init__(
        self,
        cell: CellLifecycle,
        loop: asyncio.AbstractEventLoop,
        msg: Any,
        first_delay: float,
        interval: float | None,
    ) -> None:
        self._cell: CellLifecycle | None = cell
        self._msg = msg
        self._interval = interval
        self._ticks = 0
        # Fixed rate: tick n is due at start + n * interval, computed from the same origin
        # every time so that late callbacks never push later ticks back (no drift).
        self._start = loop.time() + first_delay - (interval or 0.0)
        self._handle: asyncio.TimerHandle | None = None
        if interval is None:
            self._handle = loop.call_at(self._start, self._fire)
        else:
            self._schedule_next(loop)

    @property
    def cancelled(self) -> bool:
        return self._cell is None

    @property
    def when(self) -> float | None:
        """Loop time of the next delivery, or None once finished or cancelled."""
        return None if self._handle is None else self._handle.when()

    @property
    def ticks(self) -> int:
        """Grid index of the latest delivery (ticks skipped after a blocked loop count too)."""
        return self._ticks

    def cancel(self) -> None:
        cell, self._cell = self._cell, None
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        if cell is not None:
            cell._forget_timer(self)

    def _schedule_next(self, loop: asyncio.AbstractEventLoop) -> None:
        interval = self._interval
        assert interval is not None
        n = self._ticks + 1
        due = self._start + n * interval
        now = loop.time()
        if due < now:
            # The loop was blocked for more than one interval: skip the missed ticks rather
            # than delivering a burst, but stay on the original grid.
            n = max(n, math.floor((now - self._start) / interval) + 1)
            due = self._start + n * interval
        self._ticks = n - 1
        self._handle = loop.call_at(due, self._fire)

    def _fire(self) -> None:
        cell = self._cell
        if cell is None:
            return
        self._ticks += 1
        if self._interval is None:
            self._handle = None
            self._cell = None
            cell._forget_timer(self)
        else:
            self._schedule_next(cell.system.loop)
        cell.deliver_timer(self._msg)

    def __repr__(self) -> str:
        state = "cancelled" if self._cell is None else f"next={self.when}"
        every = f"every {self._interval}s" if self._interval is not None else "once"
        return f"<Timer {every} {type(self._msg).__name__} {state}>"

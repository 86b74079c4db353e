"""Ask timeouts without a loop timer per ask.

Asks that share one timeout value expire in the order they were made, so a FIFO plus one
loop timer for its oldest live entry does the job of one TimerHandle per ask (whose heap
pushes, comparisons and cancellations dominated the ask round trip under load).
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any, Final

from ._errors import AskTimeout

# Distinct timeout values served by a FIFO each; beyond that, asks use one handle each
# (a caller passing computed timeouts must not grow this without bound).
MAX_TIMEOUT_CLASSES: Final = 32
# Entries of answered asks are dropped lazily; compact when the FIFO is this long and
# at least half of it is answered, which keeps the cost amortised O(1) per ask.
COMPACT_MIN_LENGTH: Final = 1024


def expire_ask(fut: asyncio.Future[Any], pid: object, msg: Any, timeout: float) -> None:
    """Fail an unanswered ask with AskTimeout (the per-ask fallback timer callback)."""
    if not fut.done():
        fut.set_exception(AskTimeout(str(pid), type(msg).__name__, timeout))


class _Fifo:
    __slots__ = ("_compact_at", "_entries", "_handle", "_loop", "_timeout")

    def __init__(self, loop: asyncio.AbstractEventLoop, timeout: float) -> None:
        self._loop = loop
        self._timeout = timeout
        self._entries: deque[tuple[float, asyncio.Future[Any], object, Any]] = deque()
        self._handle: asyncio.TimerHandle | None = None
        self._compact_at = COMPACT_MIN_LENGTH

    def add(self, fut: asyncio.Future[Any], pid: object, msg: Any) -> None:
        entries = self._entries
        while entries and entries[0][1].done():
            entries.popleft()
        deadline = self._loop.time() + self._timeout
        entries.append((deadline, fut, pid, msg))
        if len(entries) >= self._compact_at:
            live = [entry for entry in entries if not entry[1].done()]
            self._entries = entries = deque(live)
            self._compact_at = max(COMPACT_MIN_LENGTH, 2 * len(live))
        if self._handle is None:
            self._handle = self._loop.call_at(entries[0][0], self._expire)

    def _expire(self) -> None:
        self._handle = None
        entries = self._entries
        now = self._loop.time()
        while entries:
            deadline, fut, pid, msg = entries[0]
            if not fut.done():
                if deadline > now:
                    self._handle = self._loop.call_at(deadline, self._expire)
                    return
                fut.set_exception(AskTimeout(str(pid), type(msg).__name__, self._timeout))
            entries.popleft()

    def close(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        self._entries.clear()


class AskDeadlines:
    """Per-system registry of FIFOs, one per timeout value."""

    __slots__ = ("_fifos", "_loop")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._fifos: dict[float, _Fifo] = {}

    def watch(self, fut: asyncio.Future[Any], pid: object, msg: Any, timeout: float) -> None:
        """Fail `fut` with AskTimeout unless it is done within `timeout` seconds."""
        fifo = self._fifos.get(timeout)
        if fifo is None:
            if len(self._fifos) >= MAX_TIMEOUT_CLASSES:
                handle = self._loop.call_later(timeout, expire_ask, fut, pid, msg, timeout)
                fut.add_done_callback(lambda _: handle.cancel())
                return
            fifo = self._fifos[timeout] = _Fifo(self._loop, timeout)
        fifo.add(fut, pid, msg)

    def close(self) -> None:
        for fifo in self._fifos.values():
            fifo.close()
        self._fifos.clear()

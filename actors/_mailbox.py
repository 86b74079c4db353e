"""Bounded FIFO mailbox with an overflow policy and waiting senders (backpressure).

The deque is allocated on the first message and released when the owner goes idle, so an
actor that is not receiving anything holds no buffer at all.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from typing import Any, Final, Literal

DEFAULT_MAILBOX_SIZE: Final = 1024

Overflow = Literal["reject", "drop_oldest"]
OVERFLOW_POLICIES: Final = ("reject", "drop_oldest")


class Ask:
    """A message whose handler's return value (or exception) answers `future`."""

    __slots__ = ("future", "msg", "sender")

    def __init__(self, msg: Any, future: asyncio.Future[Any], sender: Any) -> None:
        self.msg = msg
        self.future = future
        self.sender = sender


class Envelope:
    """A told message that carries its sender; plain tells skip this wrapper entirely."""

    __slots__ = ("msg", "sender")

    def __init__(self, msg: Any, sender: Any) -> None:
        self.msg = msg
        self.sender = sender


def unwrap(item: Any) -> Any:
    """The user message inside a mailbox item."""
    kind = type(item)
    if kind is Ask or kind is Envelope:
        return item.msg
    return item


class Mailbox:
    """Storage and overflow rules; subclasses decide what enqueueing wakes up.

    Subclasses put items with `_q.append` on their own hot path after calling
    `_make_room` when `len(_q) >= _capacity`, and call `_taken()` after each popleft.
    """

    __slots__ = ("_capacity", "_drop_oldest", "_q", "_waiters")

    def __init__(self, capacity: int = DEFAULT_MAILBOX_SIZE, overflow: Overflow = "reject") -> None:
        if capacity < 1:
            raise ValueError(f"mailbox capacity must be >= 1, got {capacity}")
        if overflow not in OVERFLOW_POLICIES:
            raise ValueError(f"overflow must be one of {OVERFLOW_POLICIES}, got {overflow!r}")
        self._capacity = capacity
        self._drop_oldest = overflow == "drop_oldest"
        self._q: deque[Any] | None = None
        self._waiters: deque[asyncio.Future[None]] | None = None

    def __len__(self) -> int:
        q = self._q
        return 0 if q is None else len(q)

    @property
    def capacity(self) -> int:
        return self._capacity

    def _full(self) -> bool:
        q = self._q
        return q is not None and len(q) >= self._capacity

    def _make_room(self, q: deque[Any], item: Any) -> None:
        """Apply the overflow policy to a full queue: raise, or evict the oldest item."""
        if not self._drop_oldest:
            self._rejected(item)
            raise AssertionError("_rejected must raise")  # pragma: no cover
        self._dropped(q.popleft())

    def _rejected(self, item: Any) -> None:
        """Count and raise MailboxFull (subclasses)."""
        raise NotImplementedError

    def _dropped(self, item: Any) -> None:
        """Count an evicted item and settle it if it was an ask (subclasses)."""
        raise NotImplementedError

    async def _wait_for_room(self) -> None:
        """Suspend until a slot frees up (or the owner is torn down and wakes everyone)."""
        waiters = self._waiters
        if waiters is None:
            waiters = self._waiters = deque()
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        waiters.append(fut)
        try:
            await fut
        except asyncio.CancelledError:
            if not fut.done() or fut.cancelled():
                with contextlib.suppress(ValueError):
                    waiters.remove(fut)
            else:
                # We were woken and cancelled at once: pass the free slot on.
                self._taken()
            raise

    def _taken(self) -> None:
        """A slot freed up: wake the longest-waiting sender that is still waiting."""
        waiters = self._waiters
        while waiters:
            fut = waiters.popleft()
            if not fut.done():
                fut.set_result(None)
                return

    def _wake_all_waiters(self) -> None:
        waiters, self._waiters = self._waiters, None
        while waiters:
            fut = waiters.popleft()
            if not fut.done():
                fut.set_result(None)

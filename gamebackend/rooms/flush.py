"""Batched, asynchronous persistence of battles' replay logs through Celery.

Room actors hand chunks of closed frames to ``ReplayFlusher.add`` (memory only). One task
owned by the flusher sends them to the ``save_replay`` task at most every
``FLUSH_INTERVAL_S`` (sooner when ``FLUSH_BATCH`` chunks wait). Enqueueing is blocking I/O,
so it runs in a thread, never on the event loop; a failing broker keeps the chunks (up to
``MAX_PENDING``) for the next attempt, in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Final

logger = logging.getLogger(__name__)

FLUSH_INTERVAL_S: Final = 0.5
FLUSH_BATCH: Final = 200
# Chunks kept while the broker is unreachable before the oldest are dropped (logged).
MAX_PENDING: Final = 50_000

Enqueue = Callable[[list[dict[str, Any]]], Any]
Guard = Callable[..., Awaitable[Any]]


async def unguarded(fn: Callable[..., Awaitable[Any]], *args: Any) -> Any:
    return await fn(*args)


def celery_enqueue(chunks: list[dict[str, Any]]) -> Any:
    from gamebackend.rooms.tasks import save_replay

    return save_replay.delay(chunks)


class ReplayFlusher:
    def __init__(self, enqueue: Enqueue = celery_enqueue, guard: Guard = unguarded) -> None:
        self._enqueue = enqueue
        self._guard = guard
        self._pending: list[dict[str, Any]] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.flushed = 0
        self.failures = 0
        self.dropped = 0

    def add(self, chunk: dict[str, Any]) -> None:
        self._pending.append(chunk)
        if len(self._pending) >= FLUSH_BATCH:
            self._wake.set()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(  # owned by ReplayFlusher
                self._run(), name="replay-flusher"
            )

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), FLUSH_INTERVAL_S)
            self._wake.clear()
            await self.flush()

    async def flush(self) -> None:
        """Send everything pending now, in order; keep it if the broker fails."""
        while self._pending:
            batch = self._pending[:FLUSH_BATCH]
            try:
                await self._guard(asyncio.to_thread, self._enqueue, batch)
            except Exception:
                self.failures += 1
                logger.exception("enqueueing %d replay chunks failed; will retry", len(batch))
                excess = len(self._pending) - MAX_PENDING
                if excess > 0:
                    del self._pending[:excess]
                    self.dropped += excess
                    logger.error("replay flusher dropped %d unsent chunks (broker down)", excess)
                return
            del self._pending[: len(batch)]
            self.flushed += len(batch)

    async def close(self) -> None:
        """Stop the loop and send what is left (called at shutdown)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.flush()

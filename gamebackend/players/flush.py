"""Batched, asynchronous persistence of player states through Celery.

Actors hand ``PlayerRecord`` versions to ``StateFlusher.add`` (memory only). One task
owned by the flusher sends them to the ``save_states`` task in batches: at most every
``FLUSH_INTERVAL_S``, or sooner when ``FLUSH_BATCH`` records wait. Enqueueing is blocking
I/O (a broker round trip or a file write), so it runs in a thread, never on the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from gamebackend.players.state import PlayerRecord

logger = logging.getLogger(__name__)

FLUSH_INTERVAL_S = 0.5
FLUSH_BATCH = 500
# Records kept while the broker is unreachable before the oldest are dropped (logged).
MAX_PENDING = 100_000

Enqueue = Callable[[list[dict[str, Any]]], Any]
# Runs a blocking enqueue off the loop, e.g. through the ``celery.enqueue`` breaker.
Guard = Callable[..., Awaitable[Any]]


async def unguarded(fn: Callable[..., Awaitable[Any]], *args: Any) -> Any:
    return await fn(*args)


def celery_enqueue(records: list[dict[str, Any]]) -> Any:
    from gamebackend.players.tasks import save_states

    return save_states.delay(records)


class StateFlusher:
    def __init__(self, enqueue: Enqueue = celery_enqueue, guard: Guard = unguarded) -> None:
        self._enqueue = enqueue
        self._guard = guard
        # Latest record per player: a newer state supersedes an unsent older one.
        self._pending: dict[str, PlayerRecord] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.flushed = 0
        self.failures = 0
        # When the oldest record still waiting was added (monotonic), for the flush lag.
        self.oldest_pending_at: float | None = None

    def __len__(self) -> int:
        return len(self._pending)

    def add(self, record: PlayerRecord) -> None:
        if not self._pending:
            self.oldest_pending_at = time.monotonic()
        self._pending[record.player_id] = record
        if len(self._pending) >= FLUSH_BATCH:
            self._wake.set()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(  # owned by StateFlusher
                self._run(), name="state-flusher"
            )

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), FLUSH_INTERVAL_S)
            self._wake.clear()
            await self.flush()

    async def flush(self) -> None:
        """Send everything pending now (in batches); keep it if the broker fails."""
        while self._pending:
            batch_keys = list(self._pending)[:FLUSH_BATCH]
            batch = [self._pending.pop(key) for key in batch_keys]
            try:
                payload = [record.to_json() for record in batch]
                await self._guard(asyncio.to_thread, self._enqueue, payload)
            except Exception:
                self.failures += 1
                logger.exception("enqueueing %d player states failed; will retry", len(batch))
                for record in batch:
                    self._pending.setdefault(record.player_id, record)
                self._trim()
                return
            self.flushed += len(batch)
        self.oldest_pending_at = None

    def _trim(self) -> None:
        excess = len(self._pending) - MAX_PENDING
        if excess > 0:
            for key in list(self._pending)[:excess]:
                del self._pending[key]
            logger.error("flusher dropped %d unsent player states (broker down)", excess)

    async def close(self) -> None:
        """Stop the loop and send what is left (called at shutdown)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.flush()

"""The node's snapshots: periodic ones of online players, and one at logout or shutdown.

A snapshot is a reference to the player's current immutable version (O(1) to take);
they are sent in batches, as JSON, to the ``gamebackend.snapshots.record`` task through
the ``celery.enqueue`` breaker. Snapshots are a recovery aid, not the durable state (the
flush buffer is): a batch the broker refuses is logged and dropped.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from gamebackend.players.state import ENTITY_PLAYER, PlayerRecord

logger = logging.getLogger(__name__)

# Logout and shutdown snapshots wait at most this long before they are sent.
SEND_EVERY_S = 1.0

Guard = Callable[..., Awaitable[Any]]


def celery_send(items: list[dict[str, Any]]) -> Any:
    from gamebackend.snapshots.tasks import record_snapshots

    return record_snapshots.delay(items)


async def _unguarded(fn: Callable[..., Awaitable[Any]], *args: Any) -> Any:
    return await fn(*args)


class Snapshotter:
    def __init__(
        self,
        *,
        every_s: float,
        guard: Guard = _unguarded,
        send: Callable[[list[dict[str, Any]]], Any] = celery_send,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.every_s = every_s
        self._guard = guard
        self._send = send
        self._clock = clock
        # Online players changed since their last snapshot: their newest version.
        self._changed: dict[str, PlayerRecord] = {}
        self._queue: list[dict[str, Any]] = []
        self.closing = False
        self.sent = 0
        self.dropped = 0

    def changed(self, record: PlayerRecord) -> None:
        self._changed[record.player_id] = record

    def stopped(self, record: PlayerRecord) -> None:
        self._changed.pop(record.player_id, None)
        self._take(record, "shutdown" if self.closing else "logout")

    def periodic(self) -> None:
        changed, self._changed = self._changed, {}
        for record in changed.values():
            self._take(record, "periodic")

    def _take(self, record: PlayerRecord, reason: str) -> None:
        self._queue.append(
            {
                "kind": ENTITY_PLAYER,
                "reason": reason,
                "taken_at": self._clock(),
                "state": record.to_json(),
            }
        )

    async def send_queued(self) -> None:
        if not self._queue:
            return
        items, self._queue = self._queue, []
        try:
            await self._guard(asyncio.to_thread, self._send, items)
        except Exception as exc:
            self.dropped += len(items)
            logger.warning("sending %d snapshots failed (%r); dropped", len(items), exc)
            return
        self.sent += len(items)

    async def run(self) -> None:
        next_periodic = time.monotonic() + self.every_s
        while True:
            await asyncio.sleep(min(SEND_EVERY_S, self.every_s))
            if time.monotonic() >= next_periodic:
                next_periodic += self.every_s
                self.periodic()
            await self.send_queued()

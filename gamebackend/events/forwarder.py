"""The bus's durable handler on a node: events, batched, to the ``events.record`` task.

Subscribed to every type; it only appends to a list (memory). Its task (owned by the
forwarder) sends the batch every ``FORWARD_EVERY_S`` as one Celery task through the
``celery.enqueue`` breaker, in a thread. The log is an audit aid: a batch the broker
refuses is logged and dropped, and the list is bounded (older events dropped, counted).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from gamebackend.events.bus import DomainEvent

logger = logging.getLogger(__name__)

FORWARD_EVERY_S = 0.5
MAX_HELD = 10_000

Guard = Callable[..., Awaitable[Any]]


def celery_send(events: list[dict[str, Any]]) -> Any:
    from gamebackend.events.tasks import record_events

    return record_events.delay(events)


async def _unguarded(fn: Callable[..., Awaitable[Any]], *args: Any) -> Any:
    return await fn(*args)


class EventForwarder:
    def __init__(
        self,
        *,
        guard: Guard = _unguarded,
        send: Callable[[list[dict[str, Any]]], Any] = celery_send,
        every_s: float = FORWARD_EVERY_S,
    ) -> None:
        self._guard = guard
        self._send = send
        self.every_s = every_s
        self._held: list[dict[str, Any]] = []
        self.sent = 0
        self.dropped = 0

    def __call__(self, event: DomainEvent) -> None:
        if len(self._held) >= MAX_HELD:
            self._held.pop(0)
            self.dropped += 1
        self._held.append(event.to_json())

    async def flush(self) -> None:
        if not self._held:
            return
        batch, self._held = self._held, []
        try:
            await self._guard(asyncio.to_thread, self._send, batch)
        except Exception as exc:
            self.dropped += len(batch)
            logger.warning("recording %d events failed (%r); dropped", len(batch), exc)
            return
        self.sent += len(batch)

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.every_s)
            await self.flush()

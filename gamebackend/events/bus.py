"""The in-process event bus: typed domain events to subscribers through a worker pool.

``publish`` never blocks and never raises: it puts the event on a bounded queue, and when
the queue is full the event is counted in ``dropped`` and dropped (a game tick or a
message handler must never wait on a subscriber). ``workers`` tasks (``GAME_EVENT_WORKERS``,
owned by the bus) take events off the queue and call the subscribers of the event's type
(and the ``*`` subscribers); a subscriber that raises is logged and counted, and the
others still run. Pure asyncio: no Django (docs/DURABILITY.md, "Event bus").
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

logger = logging.getLogger(__name__)

__all__ = ["ALL", "EVENT_TYPES", "DomainEvent", "EventBus", "Handler"]

# The domain events (``type``); subscribing to ``ALL`` hears every type.
EVENT_TYPES = frozenset(
    {
        "player.online",
        "player.offline",
        "room.created",
        "room.ended",
        "battle.desync",
        "snapshot.taken",
        "snapshot.restored",
        "rule.changed",
    }
)
ALL = "*"
DEFAULT_WORKERS = 8
DEFAULT_QUEUE_MAX = 10_000


@dataclass(frozen=True, slots=True)
class DomainEvent:
    type: str
    data: dict[str, Any] = field(default_factory=dict)
    # Wall-clock time of the publish (seconds) and the publishing node.
    at: float = field(default_factory=time.time)
    node: str = ""
    # Monotonic time of the publish, for latency measurements in this process.
    published: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        if self.type not in EVENT_TYPES:
            raise ValueError(f"unknown event type {self.type!r}")

    def to_json(self) -> dict[str, Any]:
        return {"type": self.type, "data": self.data, "at": self.at, "node": self.node}


Handler = Callable[[DomainEvent], Awaitable[None] | None]


class EventBus:
    def __init__(
        self, *, workers: int = DEFAULT_WORKERS, queue_max: int = DEFAULT_QUEUE_MAX
    ) -> None:
        self.workers = workers
        self._queue: asyncio.Queue[DomainEvent] = asyncio.Queue(maxsize=queue_max)
        self._handlers: dict[str, list[Handler]] = defaultdict(list)
        self._tasks: list[asyncio.Task[None]] = []
        self.published = 0
        self.handled = 0
        self.dropped = 0
        self.failures = 0

    def subscribe(self, event_type: str, handler: Handler) -> None:
        if event_type != ALL and event_type not in EVENT_TYPES:
            raise ValueError(f"unknown event type {event_type!r}")
        self._handlers[event_type].append(handler)

    def publish(self, event: DomainEvent) -> bool:
        """Queue ``event`` for its subscribers; False (and counted) when the queue is full."""
        try:
            self._queue.put_nowait(event)
        except asyncio.QueueFull:
            self.dropped += 1
            return False
        self.published += 1
        return True

    def __len__(self) -> int:
        return self._queue.qsize()

    def start(self) -> None:
        if self._tasks:
            return
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._work(), name=f"event-worker-{i}")  # owned by EventBus
            for i in range(self.workers)
        ]

    async def close(self) -> None:
        """Stop the workers; events still queued are dropped (the bus is lossy by design;
        durable consumers persist through their own handler)."""
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _work(self) -> None:
        queue = self._queue
        handlers = self._handlers
        while True:
            event = await queue.get()
            for handler in (*handlers.get(event.type, ()), *handlers.get(ALL, ())):
                try:
                    result = handler(event)
                    if inspect.isawaitable(result):
                        await result
                except Exception:
                    self.failures += 1
                    logger.exception("event handler %r failed on %s", handler, event.type)
            self.handled += 1

"""The node's beat: runnode's supervisor loop enqueues the periodic Celery tasks.

Celery's own beat is a separate scheduler process with a schedule file; the supervisor
already wakes every CHILD_POLL_S in both profiles, so it sends the few periodic tasks
itself. The tasks are idempotent: two nodes each sending one is harmless.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from django.conf import settings

logger = logging.getLogger(__name__)

# The first run of each task waits this long after the node starts (it is up by then).
FIRST_RUN_DELAY_S = 60.0


def periodic_schedule() -> dict[str, float]:
    """Task name -> period in seconds."""
    every = settings.GAME_RETENTION_EVERY_S
    return {"gamebackend.snapshots.prune": every, "gamebackend.events.prune": every}


def _send(name: str) -> None:
    from gamebackend.celery import app

    app.send_task(name)


class PeriodicTasks:
    def __init__(
        self,
        schedule: dict[str, float],
        *,
        send: Callable[[str], None] = _send,
        clock: Callable[[], float] = time.monotonic,
        first_delay_s: float = FIRST_RUN_DELAY_S,
    ) -> None:
        self._send = send
        self._clock = clock
        now = clock()
        self._every = dict(schedule)
        self._due = {name: now + min(first_delay_s, every) for name, every in schedule.items()}

    def tick(self) -> list[str]:
        """Send every task that is due; returns their names. Never raises."""
        now = self._clock()
        sent = []
        for name, due in self._due.items():
            if now < due:
                continue
            self._due[name] = now + self._every[name]
            try:
                self._send(name)
            except Exception as exc:  # the broker is down: the next period tries again
                logger.warning("enqueueing periodic task %s failed: %r", name, exc)
                continue
            sent.append(name)
        return sent

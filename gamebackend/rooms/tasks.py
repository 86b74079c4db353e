from __future__ import annotations

from typing import Any

from celery import Task, shared_task

from gamebackend.flow.breaker import CircuitOpen
from gamebackend.flow.worker import worker_breaker
from gamebackend.rooms.services import replay_chunks_save

SAVE_REPLAY_TASK_NAME = "gamebackend.rooms.save_replay"


@shared_task(
    bind=True,
    name=SAVE_REPLAY_TASK_NAME,
    autoretry_for=(Exception,),
    dont_autoretry_for=(CircuitOpen,),
    retry_backoff=True,
    retry_backoff_max=60,
    max_retries=10,
)
def save_replay(self: Task, chunks: list[dict[str, Any]]) -> int:
    """Persist a batch of replay chunks (JSON dicts). Idempotent.

    Runs through the ``db.flush`` breaker like the player flush: while the database keeps
    failing, batches wait for the breaker's retry time.
    """
    try:
        return worker_breaker("db.flush").call_sync(replay_chunks_save, chunks=chunks)
    except CircuitOpen as exc:
        raise self.retry(countdown=exc.retry_after_ms / 1000.0, exc=exc) from exc

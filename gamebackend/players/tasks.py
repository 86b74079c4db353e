from __future__ import annotations

from typing import Any

from celery import Task, shared_task

from gamebackend.flow.breaker import CircuitOpen
from gamebackend.flow.worker import worker_breaker
from gamebackend.players.services import player_states_save

SAVE_STATES_TASK_NAME = "gamebackend.players.save_states"


@shared_task(
    bind=True,
    name=SAVE_STATES_TASK_NAME,
    autoretry_for=(Exception,),
    dont_autoretry_for=(CircuitOpen,),
    retry_backoff=True,
    retry_backoff_max=60,
    max_retries=10,
)
def save_states(self: Task, states: list[dict[str, Any]]) -> int:
    """Persist a batch of player states (JSON dicts); stale revisions lose. Idempotent.

    Runs through the ``db.flush`` breaker: while the database keeps failing, batches wait
    for the breaker's retry time instead of piling more load on it.
    """
    try:
        return worker_breaker("db.flush").call_sync(player_states_save, states=states)
    except CircuitOpen as exc:
        raise self.retry(countdown=exc.retry_after_ms / 1000.0, exc=exc) from exc

"""The worker's side of the flush path (docs/DURABILITY.md)."""

from __future__ import annotations

import logging
from typing import Any

from celery import Task, shared_task
from django.conf import settings

from gamebackend.flow.breaker import CircuitOpen
from gamebackend.flow.worker import worker_breaker
from gamebackend.players.services import player_states_upsert

logger = logging.getLogger(__name__)

FLUSH_BATCH_TASK_NAME = "gamebackend.players.flush_batch"
# Retry backoff: RETRY_BASE_S doubling per attempt, at most RETRY_MAX_S.
RETRY_BASE_S = 0.5
RETRY_MAX_S = 30.0


def retry_delay_s(attempt: int) -> float:
    return float(min(RETRY_MAX_S, RETRY_BASE_S * (2**attempt)))


@shared_task(bind=True, name=FLUSH_BATCH_TASK_NAME, acks_late=True, max_retries=None)
def flush_batch(self: Task, batch: dict[str, Any]) -> int:
    """Write one flush batch (``{"id", "kind", "states": [...]}``) in one statement.

    Idempotent: the LSN guard makes a duplicate or stale batch change nothing. Runs through
    the ``db.flush`` breaker; failures retry with backoff, and a batch failing
    ``GAME_FLUSH_MAX_RETRIES`` times is recorded as a dead letter (the node still holds it
    in its journal and sends it again later, so nothing is lost).
    """
    attempt = int(self.request.retries or 0)
    try:
        return worker_breaker("db.flush").call_sync(player_states_upsert, states=batch["states"])
    except CircuitOpen as exc:
        # Not the batch's fault: wait for the breaker's retry time.
        raise self.retry(countdown=exc.retry_after_ms / 1000.0, exc=exc) from exc
    except Exception as exc:
        if attempt >= settings.GAME_FLUSH_MAX_RETRIES:
            _dead_letter(batch, exc, attempt + 1)
            return 0
        raise self.retry(countdown=retry_delay_s(attempt), exc=exc) from exc


def _dead_letter(batch: dict[str, Any], exc: Exception, attempts: int) -> None:
    from gamebackend.players.models import FlushDeadLetter

    logger.error("flush batch %s failed %d times: %r", batch.get("id"), attempts, exc)
    try:
        FlushDeadLetter.objects.create(
            batch_id=str(batch.get("id", ""))[:64],
            entity_kind=str(batch.get("kind", "player"))[:16],
            entities=len(batch.get("states", [])),
            payload=batch,
            error=repr(exc)[:2000],
            attempts=attempts,
        )
    except Exception:
        # The database is what fails: the log line above is the record.
        logger.exception("recording dead-letter flush batch %s failed", batch.get("id"))

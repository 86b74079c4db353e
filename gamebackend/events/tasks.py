from __future__ import annotations

from typing import Any

from celery import shared_task

from gamebackend.celery import DURABLE_TASK_OPTIONS
from gamebackend.events.services import RECORD_TASK_NAME, events_prune, events_record

PRUNE_TASK_NAME = "gamebackend.events.prune"


@shared_task(name=RECORD_TASK_NAME, **DURABLE_TASK_OPTIONS)
def record_events(events: list[dict[str, Any]]) -> int:
    """The durable handler: store a batch of events in the event log."""
    return events_record(events=events)


@shared_task(name=PRUNE_TASK_NAME, acks_late=True)
def prune_events() -> int:
    """The event log's retention (``GAME_EVENT_LOG_DAYS``); idempotent."""
    return events_prune()

"""The event log (the bus's durable side) and durable events from synchronous code."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from gamebackend.events.bus import EVENT_TYPES
from gamebackend.events.models import Event

# The durable handler's task (events/tasks.py); sent by name from here.
RECORD_TASK_NAME = "gamebackend.events.record"


def events_record(*, events: Iterable[Mapping[str, Any]]) -> int:
    """Store a batch of events (JSON dicts ``type``, ``data``, ``at``, ``node``): one INSERT.
    Unknown types are skipped (a newer node may know more)."""
    tz = timezone.get_current_timezone()
    rows = [
        Event(
            type=str(e["type"]),
            node=str(e.get("node", ""))[:128],
            at=datetime.fromtimestamp(float(e["at"]), tz=tz),
            data=dict(e.get("data") or {}),
        )
        for e in events
        if e.get("type") in EVENT_TYPES
    ]
    Event.objects.bulk_create(rows)
    return len(rows)


def event_emit_durable(*, type: str, data: Mapping[str, Any]) -> None:
    """Record an event from synchronous code once the current transaction commits (the
    ``events.record`` task; an event of a rolled-back change is never recorded)."""
    if type not in EVENT_TYPES:
        raise ValueError(f"unknown event type {type!r}")
    event = {
        "type": type,
        "data": dict(data),
        "at": timezone.now().timestamp(),
        "node": str(settings.GAME_NODE_ID),
    }

    def enqueue() -> None:
        from gamebackend.celery import app

        app.send_task(RECORD_TASK_NAME, args=[[event]])

    transaction.on_commit(enqueue)


def events_prune(*, now: datetime | None = None, days: int | None = None) -> int:
    """Delete events older than ``GAME_EVENT_LOG_DAYS``; returns how many."""
    days = settings.GAME_EVENT_LOG_DAYS if days is None else days
    cutoff = (now or timezone.now()) - timedelta(days=days)
    return int(Event.objects.filter(at__lt=cutoff).delete()[0])

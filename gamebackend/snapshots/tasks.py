from __future__ import annotations

from typing import Any

from celery import shared_task

from gamebackend.celery import DURABLE_TASK_OPTIONS
from gamebackend.snapshots.services import snapshots_prune, snapshots_record_many

RECORD_TASK_NAME = "gamebackend.snapshots.record"
PRUNE_TASK_NAME = "gamebackend.snapshots.prune"


@shared_task(name=RECORD_TASK_NAME, **DURABLE_TASK_OPTIONS)
def record_snapshots(snapshots: list[dict[str, Any]]) -> int:
    """Record snapshots a node took (JSON dicts, see ``snapshots_record_many``)."""
    return snapshots_record_many(snapshots=snapshots)


@shared_task(name=PRUNE_TASK_NAME, acks_late=True)
def prune_snapshots() -> int:
    """The retention rule (run by beat every SNAPSHOT_PRUNE_EVERY_S); idempotent."""
    return snapshots_prune()

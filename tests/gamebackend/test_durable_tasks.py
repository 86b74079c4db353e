"""The durable handlers' Celery options (gamebackend.celery.DURABLE_TASK_OPTIONS)."""

from __future__ import annotations

from typing import Any

import pytest

from gamebackend.celery import DURABLE_MAX_RETRIES, DURABLE_RETRY_BACKOFF_MAX_S
from gamebackend.events.tasks import record_events
from gamebackend.snapshots.tasks import record_snapshots


@pytest.mark.parametrize("task", [record_events, record_snapshots], ids=lambda t: t.name)
def test_durable_handlers_ack_late_and_retry_with_backoff(task: Any) -> None:
    # Acknowledged after running (a dead worker's task is redelivered), retried on any error.
    assert task.acks_late is True
    assert task.autoretry_for == (Exception,)
    assert task.retry_backoff is True
    assert task.retry_backoff_max == DURABLE_RETRY_BACKOFF_MAX_S
    assert task.max_retries == DURABLE_MAX_RETRIES

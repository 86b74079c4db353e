"""The Celery application: configured from Django settings (``CELERY_*``)."""

from __future__ import annotations

import os
from typing import Any, Final

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gamebackend.settings")

app = Celery("gamebackend")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# A durable handler (events, snapshots): acknowledged only after it ran, so a worker that
# dies mid-task leaves it to another, and retried with exponential backoff capped at a
# minute; the handlers are idempotent, so a retry or a redelivery is harmless.
DURABLE_RETRY_BACKOFF_MAX_S: Final = 60
DURABLE_MAX_RETRIES: Final = 5
DURABLE_TASK_OPTIONS: Final[dict[str, Any]] = {
    "acks_late": True,
    "autoretry_for": (Exception,),
    "retry_backoff": True,
    "retry_backoff_max": DURABLE_RETRY_BACKOFF_MAX_S,
    "max_retries": DURABLE_MAX_RETRIES,
}

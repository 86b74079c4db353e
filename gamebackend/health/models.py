from __future__ import annotations

from django.db import models


class WorkerHeartbeat(models.Model):
    """The last time a Celery worker answered this node's ping (readiness)."""

    node_id = models.CharField(max_length=200, unique=True)
    worker = models.CharField(max_length=200, blank=True)
    answered_at = models.DateTimeField()

    class Meta:
        verbose_name = "worker heartbeat"

    def __str__(self) -> str:
        return f"{self.node_id} <- {self.worker} at {self.answered_at:%Y-%m-%d %H:%M:%S}"

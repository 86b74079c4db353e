from __future__ import annotations

from django.db import models


class Event(models.Model):
    """The event log: domain events recorded by the durable handler (``events.record``)."""

    type = models.CharField(max_length=32, db_index=True)
    node = models.CharField(max_length=128, blank=True)
    at = models.DateTimeField(db_index=True)
    data = models.JSONField(default=dict)

    class Meta:
        ordering = ("-at", "-id")

    def __str__(self) -> str:
        return f"{self.type} at {self.at:%Y-%m-%d %H:%M:%S}"

from __future__ import annotations

from django.conf import settings
from django.db import models


class Snapshot(models.Model):
    """One entity's state at one LSN (a copy of an immutable version; docs/DURABILITY.md)."""

    class Reason(models.TextChoices):
        PERIODIC = "periodic"
        LOGOUT = "logout"
        MANUAL = "manual"
        PRE_RESTORE = "pre_restore"
        SHUTDOWN = "shutdown"

    entity_kind = models.CharField(max_length=16, default="player")
    entity_id = models.CharField(max_length=64)
    lsn = models.BigIntegerField()
    taken_at = models.DateTimeField(db_index=True)
    reason = models.CharField(max_length=16, choices=Reason.choices)
    payload = models.JSONField()
    # The payload's size in bytes (compact JSON).
    size = models.PositiveIntegerField()

    class Meta:
        ordering = ("-taken_at", "-id")
        indexes = [models.Index(fields=["entity_kind", "entity_id", "-taken_at"])]

    def __str__(self) -> str:
        return f"{self.entity_kind} {self.entity_id} @ lsn {self.lsn} ({self.reason})"


class SnapshotAudit(models.Model):
    """Who did what with a snapshot (``action`` e.g. ``snapshot.restore``); append-only."""

    action = models.CharField(max_length=32)
    snapshot = models.ForeignKey(Snapshot, null=True, on_delete=models.SET_NULL, related_name="+")
    entity_kind = models.CharField(max_length=16, default="player")
    entity_id = models.CharField(max_length=64)
    by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    by_label = models.CharField(max_length=150, blank=True)
    at = models.DateTimeField(auto_now_add=True)
    # E.g. where the state went ("live actor on node-a" or "database") and the new LSN.
    detail = models.JSONField(default=dict)

    class Meta:
        ordering = ("-at", "-id")

    def __str__(self) -> str:
        return f"{self.action} {self.entity_kind} {self.entity_id} by {self.by_label}"

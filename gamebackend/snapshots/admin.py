"""Console pages for snapshots and their audit trail (read-only; restore goes through
``snapshot_restore``: the ``snapshot`` management command, or the console's own pages)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from gamebackend.snapshots.models import Snapshot, SnapshotAudit


class _ReadOnly(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Snapshot)
class SnapshotAdmin(_ReadOnly):
    list_display = ("id", "entity_kind", "entity_id", "lsn", "reason", "taken_at", "size")
    list_filter = ("entity_kind", "reason")
    search_fields = ("entity_id",)


@admin.register(SnapshotAudit)
class SnapshotAuditAdmin(_ReadOnly):
    list_display = ("at", "action", "entity_kind", "entity_id", "by_label", "detail")
    list_filter = ("action",)
    search_fields = ("entity_id", "by_label")

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

from __future__ import annotations

from typing import Any

from django.db.models import Count, Max, QuerySet

from gamebackend.snapshots.models import Snapshot

# The most snapshots one listing returns.
LIST_LIMIT_MAX = 500


def snapshot_list_for_entity(
    *, entity_kind: str = "player", entity_id: str, limit: int = 50
) -> QuerySet[Snapshot]:
    """The entity's snapshots, newest first (at most ``limit``, capped at LIST_LIMIT_MAX)."""
    limit = max(1, min(limit, LIST_LIMIT_MAX))
    return Snapshot.objects.filter(entity_kind=entity_kind, entity_id=entity_id)[:limit]


def snapshot_get(*, snapshot_id: int) -> Snapshot:
    """One snapshot; raises ``Snapshot.DoesNotExist``."""
    return Snapshot.objects.get(pk=snapshot_id)


def snapshot_entities_recent(*, entity_kind: str | None = None, limit: int = 50) -> list[Any]:
    """The entities snapshotted most recently, newest first: ``entity_kind``,
    ``entity_id``, ``snapshots`` (how many are kept) and ``last_taken_at``."""
    limit = max(1, min(limit, LIST_LIMIT_MAX))
    rows = Snapshot.objects.all()
    if entity_kind:
        rows = rows.filter(entity_kind=entity_kind)
    grouped = (
        rows.values("entity_kind", "entity_id")
        .annotate(snapshots=Count("id"), last_taken_at=Max("taken_at"))
        .order_by("-last_taken_at")
    )
    return list(grouped[:limit])

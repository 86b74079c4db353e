from __future__ import annotations

from datetime import datetime

from gamebackend.health.models import WorkerHeartbeat


def worker_heartbeat_record(*, node_id: str, worker: str, answered_at: datetime) -> None:
    """Upsert the node's heartbeat; an older answer never overwrites a newer one."""
    updated = WorkerHeartbeat.objects.filter(node_id=node_id, answered_at__lt=answered_at).update(
        worker=worker, answered_at=answered_at
    )
    if not updated:
        WorkerHeartbeat.objects.get_or_create(
            node_id=node_id, defaults={"worker": worker, "answered_at": answered_at}
        )

from __future__ import annotations

from django.utils import timezone

from gamebackend.health.models import WorkerHeartbeat


def worker_heartbeat_age_s(*, node_id: str) -> float | None:
    """Seconds since a worker last answered ``node_id``'s ping; None if it never did."""
    beat = WorkerHeartbeat.objects.filter(node_id=node_id).first()
    if beat is None:
        return None
    return (timezone.now() - beat.answered_at).total_seconds()


def worker_heartbeats() -> list[dict[str, object]]:
    """Each node's last worker answer: node, worker, seconds ago."""
    now = timezone.now()
    return [
        {
            "node": beat.node_id,
            "worker": beat.worker,
            "age_s": round((now - beat.answered_at).total_seconds(), 1),
        }
        for beat in WorkerHeartbeat.objects.order_by("node_id")
    ]

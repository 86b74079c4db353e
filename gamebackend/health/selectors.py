from __future__ import annotations

from django.utils import timezone

from gamebackend.health.models import WorkerHeartbeat


def worker_heartbeat_age_s(*, node_id: str) -> float | None:
    """Seconds since a worker last answered ``node_id``'s ping; None if it never did."""
    beat = WorkerHeartbeat.objects.filter(node_id=node_id).first()
    if beat is None:
        return None
    return (timezone.now() - beat.answered_at).total_seconds()

from __future__ import annotations

import socket
from typing import Any

from celery import shared_task
from django.utils import timezone

from gamebackend.health.services import worker_heartbeat_record

PING_TASK_NAME = "gamebackend.health.ping"


@shared_task(name=PING_TASK_NAME, ignore_result=False)
def ping(node_id: str) -> dict[str, Any]:
    """Answer a node's readiness ping: record it and return who answered (idempotent)."""
    worker = socket.gethostname()
    now = timezone.now()
    worker_heartbeat_record(node_id=node_id, worker=worker, answered_at=now)
    return {"node_id": node_id, "worker": worker, "answered_at": now.isoformat()}

"""Writing the audit log: one entry per operator action, in the action's own transaction."""

from __future__ import annotations

from typing import Any

from gamebackend.audit.models import AuditEntry


def audit_record(
    *, user: Any, kind: str, target: str, action: str, detail: dict[str, Any] | None = None
) -> AuditEntry:
    return AuditEntry.objects.create(
        user=user if getattr(user, "is_authenticated", False) else None,
        kind=kind,
        target=target[:200],
        action=action[:40],
        detail=detail or {},
    )

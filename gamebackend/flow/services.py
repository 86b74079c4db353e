"""Rule changes and breaker commands: audited, versioned, and announced to every node."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models import F
from django.forms.models import model_to_dict
from django.utils import timezone

from gamebackend.audit.services import audit_record
from gamebackend.flow.enforcement import BREAKER_ACTIONS
from gamebackend.flow.events import publish
from gamebackend.flow.models import (
    BreakerRule,
    NodeFlowState,
    RateLimitRule,
    RuleChange,
    RulesVersion,
)

AUDITED_EXCLUDE = ("id", "version", "updated_at")

Rule = RateLimitRule | BreakerRule


def _kind(rule: Rule) -> str:
    return "rate_limit" if isinstance(rule, RateLimitRule) else "breaker"


def _as_dict(rule: Rule | None) -> dict[str, Any] | None:
    if rule is None:
        return None
    return {k: v for k, v in model_to_dict(rule).items() if k not in AUDITED_EXCLUDE}


def _bump_version() -> int:
    RulesVersion.objects.get_or_create(pk=1)
    RulesVersion.objects.filter(pk=1).update(version=F("version") + 1)
    return int(RulesVersion.objects.values_list("version", flat=True).get(pk=1))


def flow_rule_save(*, rule: Rule, user: Any) -> Rule:
    """Validate and save a rule (new or changed), audit it, and tell every node after commit."""
    rule.full_clean()
    with transaction.atomic():
        old = type(rule).objects.select_for_update().filter(pk=rule.pk).first() if rule.pk else None
        if old is not None:
            rule.version = old.version + 1
        rule.save()
        version = _bump_version()
        RuleChange.objects.create(
            user=user if getattr(user, "is_authenticated", False) else None,
            kind=_kind(rule),
            resource=rule.resource,
            action="changed" if old is not None else "created",
            old_value=_as_dict(old),
            new_value=_as_dict(rule),
            version=version,
        )
        audit_record(
            user=user, kind="rule", target=f"{_kind(rule)} {rule.resource}",
            action="changed" if old is not None else "created",
            detail={"old": _as_dict(old), "new": _as_dict(rule), "version": version},
        )  # fmt: skip
        transaction.on_commit(lambda: publish({"kind": "rules", "version": version}))
    return rule


def flow_rule_delete(*, rule: Rule, user: Any) -> None:
    with transaction.atomic():
        old = _as_dict(rule)
        resource, kind = rule.resource, _kind(rule)
        rule.delete()
        version = _bump_version()
        RuleChange.objects.create(
            user=user if getattr(user, "is_authenticated", False) else None,
            kind=kind, resource=resource, action="deleted", old_value=old, version=version,
        )  # fmt: skip
        audit_record(
            user=user, kind="rule", target=f"{kind} {resource}", action="deleted",
            detail={"old": old, "version": version},
        )  # fmt: skip
        transaction.on_commit(lambda: publish({"kind": "rules", "version": version}))


def breaker_command(*, resource: str, action: str, user: Any) -> None:
    """Force a breaker open or closed, or reset it, on every node (audited)."""
    if action not in BREAKER_ACTIONS:
        raise ValueError(f"unknown breaker action {action!r}")
    with transaction.atomic():
        RuleChange.objects.create(
            user=user if getattr(user, "is_authenticated", False) else None,
            kind="breaker_action", resource=resource, action=action,
        )  # fmt: skip
        audit_record(user=user, kind="breaker", target=resource, action=action)
        event = {"kind": "command", "resource": resource, "action": action}
        transaction.on_commit(lambda: publish(event))


def node_flow_state_record(*, node_id: str, rules_version: int, snapshot: dict[str, Any]) -> None:
    NodeFlowState.objects.update_or_create(
        node_id=node_id,
        defaults={
            "rules_version": rules_version,
            "snapshot": snapshot,
            "updated_at": timezone.now(),
        },
    )

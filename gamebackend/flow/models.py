"""Flow-control rules as operators edit them in the console, with an audit trail.

Validation is the enforcement code's own (``bucket.Rule`` / ``breaker.BreakerRule``), so
what the console accepts is exactly what every node can enforce.
"""

from __future__ import annotations

from typing import Any, cast

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models

from gamebackend.flow import breaker_rules as br
from gamebackend.flow import bucket
from gamebackend.flow.breaker import BreakerRule as BreakerSpec
from gamebackend.flow.breaker import Strategy
from gamebackend.flow.bucket import Behavior, Rule, RuleError, Scope


def _choices(enum: Any) -> list[tuple[str, str]]:
    return [(member.value, member.value.replace("_", " ")) for member in enum]


class RateLimitRule(models.Model):
    resource = models.CharField(
        max_length=100, help_text="e.g. ws.move, ws.connect, http.auth.guest"
    )
    scope = models.CharField(max_length=16, choices=_choices(Scope), default=Scope.PLAYER.value)
    rate = models.FloatField(
        help_text=f"tokens per second, {bucket.MIN_RATE:g} to {bucket.MAX_RATE:,.0f}"
    )
    burst = models.FloatField(help_text=f"bucket capacity, 1 to {bucket.MAX_BURST:,.0f}")
    behavior = models.CharField(
        max_length=16, choices=_choices(Behavior), default=Behavior.REJECT.value
    )
    max_queueing_ms = models.FloatField(
        default=0,
        help_text=(
            f"queue: longest delay before rejecting, ms (up to {bucket.MAX_QUEUEING_MS:,.0f})"
        ),
    )
    warm_up_s = models.FloatField(
        default=0,
        help_text=f"warm up: ramp from a third to full rate, s (up to {bucket.MAX_WARM_UP_S:,.0f})",
    )
    enabled = models.BooleanField(default=True)
    version = models.PositiveIntegerField(default=1, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["resource", "scope"], name="flow_rate_rule_unique")
        ]
        ordering = ["resource", "scope"]

    def __str__(self) -> str:
        return f"{self.resource} per {self.scope}"

    def to_spec(self) -> Rule:
        return cast(Rule, _spec(self, Rule))

    def clean(self) -> None:
        _validate(self, Rule)


class BreakerRule(models.Model):
    resource = models.CharField(
        max_length=100, unique=True, help_text="e.g. db.flush, celery.enqueue"
    )
    strategy = models.CharField(max_length=16, choices=_choices(Strategy))
    threshold = models.FloatField(
        help_text=f"ratio in (0, 1], or a failure count (1 to {br.MAX_COUNT:,}) for error count"
    )
    min_requests = models.PositiveIntegerField(
        default=20, help_text=f"calls in the window before it can trip, 1 to {br.MAX_COUNT:,}"
    )
    stat_window_s = models.FloatField(
        default=10.0, help_text=f"seconds, {br.MIN_SECONDS:g} to {br.MAX_STAT_WINDOW_S:,.0f}"
    )
    max_rt_ms = models.FloatField(
        default=0,
        help_text=f"slow ratio: slower calls count as slow, ms (up to {br.MAX_RT_MS:,.0f})",
    )
    open_s = models.FloatField(
        default=5.0,
        help_text=f"first open spell, s, {br.MIN_SECONDS:g} to {br.MAX_RULE_OPEN_S:,.0f}",
    )
    half_open_probe_ratio = models.FloatField(
        default=0.05, help_text="share of half-open calls let through as probes, (0, 1]"
    )
    half_open_successes = models.PositiveIntegerField(
        default=3, help_text=f"successful probes that close it, 1 to {br.MAX_COUNT:,}"
    )
    enabled = models.BooleanField(default=True)
    version = models.PositiveIntegerField(default=1, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["resource"]

    def __str__(self) -> str:
        return self.resource

    def to_spec(self) -> BreakerSpec:
        return cast(BreakerSpec, _spec(self, BreakerSpec))

    def clean(self) -> None:
        _validate(self, BreakerSpec)


def _spec(row: models.Model, spec: Any) -> Any:
    """The enforcement code's rule from a row: same field names, validated on creation."""
    return spec(**{name: getattr(row, name) for name in spec.__dataclass_fields__})


def _validate(row: models.Model, spec: Any) -> None:
    """Validate with the enforcement code's own rules; name the field the message is about."""
    try:
        _spec(row, spec)
    except (RuleError, ValueError) as exc:
        message = str(exc)
        # Longest names first: "max_queueing_ms" must not be taken for a shorter one.
        for name in sorted(spec.__dataclass_fields__, key=len, reverse=True):
            if message.startswith(name) or f" {name} " in f" {message} ":
                raise ValidationError({name: message}) from None
        raise ValidationError(message) from None


class RulesVersion(models.Model):
    """One row: grows on every rule change, so a node can tell it has the latest rules."""

    version = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"rules v{self.version}"


class RuleChange(models.Model):
    """Audit trail: who changed which rule (or forced which breaker), when, from what, to what."""

    at = models.DateTimeField(auto_now_add=True, db_index=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    kind = models.CharField(max_length=32)  # rate_limit, breaker, breaker_action
    resource = models.CharField(max_length=100)
    action = models.CharField(max_length=32)  # created, changed, deleted, force_open, ...
    old_value = models.JSONField(null=True, blank=True)
    new_value = models.JSONField(null=True, blank=True)
    version = models.BigIntegerField(default=0)

    class Meta:
        ordering = ["-at"]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.user} {self.action} {self.kind} {self.resource}"


class NodeFlowState(models.Model):
    """Each node's live limiter counters and breaker states, refreshed every few seconds."""

    node_id = models.CharField(max_length=200, unique=True)
    rules_version = models.BigIntegerField(default=0)
    snapshot = models.JSONField(default=dict)
    updated_at = models.DateTimeField()

    def __str__(self) -> str:
        return self.node_id

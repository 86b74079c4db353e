"""Sensible defaults: limits for every inbound message type and breakers for the flush path."""

from __future__ import annotations

from typing import Any

from django.db import migrations

RATE_LIMITS = [
    # resource, scope, rate/s, burst
    ("ws.move", "player", 30, 60),
    ("ws.state", "player", 10, 20),
    ("ws.control", "player", 50, 100),  # ping, pong and ack of one connection
    ("ws.connect", "ip", 10, 20),
    ("http.auth.guest", "ip", 5, 20),
    ("http.auth.ticket", "ip", 5, 20),
]
BREAKERS = [
    # resource, strategy, threshold
    ("celery.enqueue", "error_ratio", 0.5),
    ("db.flush", "error_ratio", 0.5),
]


def forwards(apps: Any, schema_editor: Any) -> None:
    rate_limit_rule = apps.get_model("flow", "RateLimitRule")
    breaker_rule = apps.get_model("flow", "BreakerRule")
    rules_version = apps.get_model("flow", "RulesVersion")
    for resource, scope, rate, burst in RATE_LIMITS:
        rate_limit_rule.objects.get_or_create(
            resource=resource, scope=scope, defaults={"rate": rate, "burst": burst}
        )
    for resource, strategy, threshold in BREAKERS:
        breaker_rule.objects.get_or_create(
            resource=resource, defaults={"strategy": strategy, "threshold": threshold}
        )
    rules_version.objects.get_or_create(pk=1, defaults={"version": 1})


def backwards(apps: Any, schema_editor: Any) -> None:
    apps.get_model("flow", "RateLimitRule").objects.filter(
        resource__in=[r[0] for r in RATE_LIMITS]
    ).delete()
    apps.get_model("flow", "BreakerRule").objects.filter(
        resource__in=[b[0] for b in BREAKERS]
    ).delete()


class Migration(migrations.Migration):
    dependencies = [("flow", "0001_initial")]
    operations = [migrations.RunPython(forwards, backwards)]

"""Rate limits of the room messages (docs/PROTOCOL.md, rooms)."""

from __future__ import annotations

from typing import Any

from django.db import migrations

RATE_LIMITS = [
    # resource, scope, rate/s, burst
    ("ws.join", "player", 5, 10),
    ("ws.leave", "player", 5, 10),
    # 60 Hz rooms plus a few replaced inputs; the burst absorbs a reconnect's catch-up.
    ("ws.input", "player", 70, 20),
    ("ws.sync", "player", 5, 10),
    # A client reports a digest every few ticks (the SDK: every 10 by default).
    ("ws.hash", "player", 30, 60),
    ("ws.chat", "player", 2, 5),
]


def forwards(apps: Any, schema_editor: Any) -> None:
    rate_limit_rule = apps.get_model("flow", "RateLimitRule")
    for resource, scope, rate, burst in RATE_LIMITS:
        rate_limit_rule.objects.get_or_create(
            resource=resource, scope=scope, defaults={"rate": rate, "burst": burst}
        )
    rules_version = apps.get_model("flow", "RulesVersion")
    # Nodes reload rules when the version moves.
    version, _ = rules_version.objects.get_or_create(pk=1, defaults={"version": 1})
    version.version += 1
    version.save(update_fields=["version"])


def backwards(apps: Any, schema_editor: Any) -> None:
    apps.get_model("flow", "RateLimitRule").objects.filter(
        resource__in=[r[0] for r in RATE_LIMITS]
    ).delete()


class Migration(migrations.Migration):
    dependencies = [("flow", "0004_bound_rules")]
    operations = [migrations.RunPython(forwards, backwards)]

"""Shipped limits of the player auth API (device, register, login, refresh).

Per client address; plus node-wide limits on the two endpoints that hash a password (about
half a second of CPU each), so a flood of logins cannot take the whole machine.
"""

from __future__ import annotations

from typing import Any

from django.db import migrations
from django.db.models import F

RATE_LIMITS = [
    # resource, scope, rate/s, burst
    ("http.auth.device", "ip", 5, 20),
    ("http.auth.register", "ip", 1, 5),
    ("http.auth.register", "node", 10, 20),
    ("http.auth.login", "ip", 2, 10),
    ("http.auth.login", "node", 20, 40),
    ("http.auth.refresh", "ip", 5, 20),
]


def forwards(apps: Any, schema_editor: Any) -> None:
    rate_limit_rule = apps.get_model("flow", "RateLimitRule")
    rules_version = apps.get_model("flow", "RulesVersion")
    for resource, scope, rate, burst in RATE_LIMITS:
        rate_limit_rule.objects.get_or_create(
            resource=resource, scope=scope, defaults={"rate": rate, "burst": burst}
        )
    # Running nodes notice the new version and load these rules.
    rules_version.objects.filter(pk=1).update(version=F("version") + 1)


def backwards(apps: Any, schema_editor: Any) -> None:
    rate_limit_rule = apps.get_model("flow", "RateLimitRule")
    for resource, scope, _rate, _burst in RATE_LIMITS:
        rate_limit_rule.objects.filter(resource=resource, scope=scope).delete()


class Migration(migrations.Migration):
    dependencies = [("flow", "0002_default_rules")]
    operations = [migrations.RunPython(forwards, backwards)]

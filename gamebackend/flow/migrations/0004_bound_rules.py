"""Rule numbers get upper bounds (issue 12): the forms say so, and rows saved before the
bounds existed are clamped into them, audited, so every node can still load its rules.

The bounds are copied here rather than imported: a migration must keep doing what it did
when it was written, whatever the enforcement code says later.
"""

from typing import Any

from django.db import migrations, models
from django.db.models import F
from django.forms.models import model_to_dict

# field -> (lowest, highest) as of this migration (gamebackend/flow/bucket.py and
# breaker_rules.py); None: no clamp on that side.
RATE_LIMIT_BOUNDS = {
    "rate": (0.0001, 1_000_000.0),
    "burst": (1.0, 1_000_000.0),
    "max_queueing_ms": (None, 60_000.0),
    "warm_up_s": (None, 3_600.0),
}
BREAKER_BOUNDS = {
    "min_requests": (None, 1_000_000),
    "stat_window_s": (0.1, 3_600.0),
    "max_rt_ms": (None, 600_000.0),
    "open_s": (0.1, 3_600.0),
    "half_open_successes": (None, 1_000_000),
}
ERROR_COUNT_MAX = 1_000_000
AUDITED_EXCLUDE = ("id", "version", "updated_at")


def _clamp(row: Any, bounds: dict[str, tuple[Any, Any]]) -> bool:
    changed = False
    for name, (low, high) in bounds.items():
        value = getattr(row, name)
        bounded = value
        if low is not None and value < low:
            bounded = low
        if high is not None and value > high:
            bounded = high
        if bounded != value:
            setattr(row, name, bounded)
            changed = True
    return changed


def clamp_rules(apps: Any, schema_editor: Any) -> None:
    rule_change = apps.get_model("flow", "RuleChange")
    rules_version = apps.get_model("flow", "RulesVersion")
    clamped = []
    for kind, model, bounds in (
        ("rate_limit", apps.get_model("flow", "RateLimitRule"), RATE_LIMIT_BOUNDS),
        ("breaker", apps.get_model("flow", "BreakerRule"), BREAKER_BOUNDS),
    ):
        for row in model.objects.all():
            old = {k: v for k, v in model_to_dict(row).items() if k not in AUDITED_EXCLUDE}
            changed = _clamp(row, bounds)
            if (
                kind == "breaker"
                and row.strategy == "error_count"
                and row.threshold > ERROR_COUNT_MAX
            ):
                row.threshold = float(ERROR_COUNT_MAX)
                changed = True
            if changed:
                row.version += 1
                row.save()
                new = {k: v for k, v in model_to_dict(row).items() if k not in AUDITED_EXCLUDE}
                clamped.append((kind, row.resource, old, new))
    if not clamped:
        return
    rules_version.objects.get_or_create(pk=1)
    rules_version.objects.filter(pk=1).update(version=F("version") + 1)
    version = rules_version.objects.get(pk=1).version
    for kind, resource, old, new in clamped:
        rule_change.objects.create(
            kind=kind, resource=resource, action="clamped", old_value=old, new_value=new,
            version=version,
        )  # fmt: skip


class Migration(migrations.Migration):
    dependencies = [
        ("flow", "0003_auth_rate_limits"),
    ]

    operations = [
        migrations.AlterField(
            model_name="breakerrule",
            name="half_open_probe_ratio",
            field=models.FloatField(
                default=0.05, help_text="share of half-open calls let through as probes, (0, 1]"
            ),
        ),
        migrations.AlterField(
            model_name="breakerrule",
            name="half_open_successes",
            field=models.PositiveIntegerField(
                default=3, help_text="successful probes that close it, 1 to 1,000,000"
            ),
        ),
        migrations.AlterField(
            model_name="breakerrule",
            name="max_rt_ms",
            field=models.FloatField(
                default=0, help_text="slow ratio: slower calls count as slow, ms (up to 600,000)"
            ),
        ),
        migrations.AlterField(
            model_name="breakerrule",
            name="min_requests",
            field=models.PositiveIntegerField(
                default=20, help_text="calls in the window before it can trip, 1 to 1,000,000"
            ),
        ),
        migrations.AlterField(
            model_name="breakerrule",
            name="open_s",
            field=models.FloatField(default=5.0, help_text="first open spell, s, 0.1 to 3,600"),
        ),
        migrations.AlterField(
            model_name="breakerrule",
            name="stat_window_s",
            field=models.FloatField(default=10.0, help_text="seconds, 0.1 to 3,600"),
        ),
        migrations.AlterField(
            model_name="breakerrule",
            name="threshold",
            field=models.FloatField(
                help_text="ratio in (0, 1], or a failure count (1 to 1,000,000) for error count"
            ),
        ),
        migrations.AlterField(
            model_name="ratelimitrule",
            name="burst",
            field=models.FloatField(help_text="bucket capacity, 1 to 1,000,000"),
        ),
        migrations.AlterField(
            model_name="ratelimitrule",
            name="max_queueing_ms",
            field=models.FloatField(
                default=0, help_text="queue: longest delay before rejecting, ms (up to 60,000)"
            ),
        ),
        migrations.AlterField(
            model_name="ratelimitrule",
            name="rate",
            field=models.FloatField(help_text="tokens per second, 0.0001 to 1,000,000"),
        ),
        migrations.AlterField(
            model_name="ratelimitrule",
            name="warm_up_s",
            field=models.FloatField(
                default=0, help_text="warm up: ramp from a third to full rate, s (up to 3,600)"
            ),
        ),
        migrations.RunPython(clamp_rules, migrations.RunPython.noop),
    ]

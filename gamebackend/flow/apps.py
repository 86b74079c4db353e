from __future__ import annotations

from typing import Any

from django.apps import AppConfig
from django.db.models.signals import post_migrate

# Console roles: operators may change flow rules, end players' refresh sessions and lift
# login lockouts; staff may look at everything, change nothing.
OPERATORS_GROUP = "operators"
STAFF_VIEWERS_GROUP = "staff-viewers"
OPERATOR_MODELS = ("ratelimitrule", "breakerrule")
# (app label, permission codename) beyond the flow rules.
# audit.operate: the console's live actions (kick, block, message, close a room, breakers).
OPERATOR_PERMISSIONS = (
    ("accounts", "change_account"), ("accounts", "delete_loginlockout"), ("audit", "operate"),
)  # fmt: skip
VIEWABLE_APPS = ("flow", "players", "health", "accounts", "rooms", "audit", "moderation")


def ensure_console_groups(**kwargs: Any) -> None:
    """Create the two console groups with their permissions (idempotent, after migrate)."""
    from django.contrib.auth.models import Group, Permission

    viewer, _ = Group.objects.get_or_create(name=STAFF_VIEWERS_GROUP)
    operator, _ = Group.objects.get_or_create(name=OPERATORS_GROUP)
    view = Permission.objects.filter(
        content_type__app_label__in=VIEWABLE_APPS, codename__startswith="view_"
    )
    change = Permission.objects.filter(
        content_type__app_label="flow",
        content_type__model__in=OPERATOR_MODELS,
        codename__regex=r"^(add|change|delete)_",
    )
    extra = [
        Permission.objects.filter(content_type__app_label=app, codename=codename)
        for app, codename in OPERATOR_PERMISSIONS
    ]
    viewer.permissions.add(*view)
    operator.permissions.add(*view, *change, *(p for query in extra for p in query))


class FlowConfig(AppConfig):
    name = "gamebackend.flow"
    label = "flow"
    verbose_name = "Flow control"

    def ready(self) -> None:
        post_migrate.connect(ensure_console_groups, sender=self)

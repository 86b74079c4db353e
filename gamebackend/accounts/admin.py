"""Console pages for player accounts: look up a player, end their sessions, lift lockouts."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from gamebackend.accounts import services
from gamebackend.accounts.models import Account, LoginLockout, RefreshSession


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class RefreshSessionInline(ReadOnlyInline):
    model = RefreshSession
    fields = (
        "public_id", "created_at", "refreshed_at", "rotations", "expires_at", "revoked_at",
        "revoked_reason",
    )  # fmt: skip
    readonly_fields = fields


@admin.register(Account)
class AccountAdmin(admin.ModelAdmin):
    list_display = ("player_id", "username", "kind", "created_at", "last_login_at")
    list_filter = ("kind",)
    search_fields = ("player_id", "username")
    # Credentials (the password hash) never show; nothing here is edited by hand.
    fields = ("player_id", "username", "kind", "created_at", "last_login_at")
    readonly_fields = fields
    inlines = (RefreshSessionInline,)
    actions = ("revoke_sessions",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.action(
        description="End all refresh sessions (log out everywhere)", permissions=["change"]
    )
    def revoke_sessions(self, request: HttpRequest, queryset: QuerySet[Account]) -> None:
        ended = services.account_sessions_revoke(
            account_ids=list(queryset.values_list("pk", flat=True))
        )
        self.message_user(request, f"{ended} refresh sessions ended", messages.SUCCESS)


@admin.register(LoginLockout)
class LoginLockoutAdmin(admin.ModelAdmin):
    list_display = ("username", "ip_address", "failures", "last_failure_at", "locked_until")
    search_fields = ("username", "ip_address")
    readonly_fields = list_display
    actions = ("unlock",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_actions(self, request: HttpRequest) -> Any:
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)  # "unlock" says what deleting means here
        return actions

    @admin.action(description="Unlock (forget the failed logins)", permissions=["delete"])
    def unlock(self, request: HttpRequest, queryset: QuerySet[LoginLockout]) -> None:
        cleared = services.lockouts_clear(lockout_ids=list(queryset.values_list("pk", flat=True)))
        self.message_user(request, f"{cleared} lockouts lifted", messages.SUCCESS)

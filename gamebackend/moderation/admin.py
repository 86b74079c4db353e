"""Player blocks: made by the console's "kick and block" (audited); looked at here."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from gamebackend.moderation.models import PlayerBlock


@admin.register(PlayerBlock)
class PlayerBlockAdmin(admin.ModelAdmin):
    list_display = ("player_id", "until", "reason", "created_at")
    search_fields = ("player_id",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

"""Console pages for rooms: battles and their replays (download as JSON lines, staff only)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, StreamingHttpResponse
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils.html import format_html

from gamebackend.rooms.models import Battle
from gamebackend.rooms.replay import replay_lines


@admin.register(Battle)
class BattleAdmin(admin.ModelAdmin):
    list_display = (
        "room_id", "battle_id", "sim", "tick_rate", "last_tick", "started_at", "ended_at",
        "download",
    )  # fmt: skip
    list_filter = ("sim", "tick_rate")
    search_fields = ("room_id", "battle_id")
    readonly_fields = (
        "battle_id", "room_id", "tick_rate", "max_players", "input_delay", "late_policy",
        "sim", "last_tick", "started_at", "updated_at", "ended_at", "download",
    )  # fmt: skip

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # battles are written by rooms only

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="replay")
    def download(self, obj: Battle) -> str:
        url = reverse("admin:rooms_battle_replay", args=[obj.pk])
        return format_html('<a href="{}">replay.jsonl</a>', url)

    def get_urls(self) -> list[Any]:
        replay = self.admin_site.admin_view(self.replay_view)
        return [
            path("<int:pk>/replay.jsonl", replay, name="rooms_battle_replay"),
            *super().get_urls(),
        ]

    def replay_view(self, request: HttpRequest, pk: int) -> StreamingHttpResponse:
        """The battle's replay as JSON lines (logged-in staff with view permission only)."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        battle = get_object_or_404(Battle, pk=pk)
        response = StreamingHttpResponse(replay_lines(battle), content_type="application/jsonl")
        filename = f"{battle.room_id}-{battle.battle_id}.jsonl"
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        return response

"""Console pages for players and failed flush batches.

An online player's live actor owns their state: an edit of the row would be overwritten
by the next flush (the actor's LSN is higher), so online players are read-only here,
with a message saying why and what to do instead (a snapshot restore, which goes through
the actor's mailbox). Offline edits are saved above the stored LSN, so a flush still in
flight cannot undo them.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.http import HttpRequest, HttpResponse

from gamebackend.players.live import live_players
from gamebackend.players.models import FlushDeadLetter, Player
from gamebackend.players.services import player_state_force
from gamebackend.players.state import PlayerRecord

ONLINE_MESSAGE = (
    "Player {pid} is online (node {node}): their live state is authoritative and would "
    "overwrite an edit here, so this page is read-only. To change their state, restore a "
    "snapshot (manage.py snapshot restore ID), which goes through the live actor; or edit "
    "after they log out."
)


@admin.register(Player)
class PlayerAdmin(admin.ModelAdmin):
    list_display = ("player_id", "name", "x", "y", "lsn", "last_seen_at")
    search_fields = ("player_id", "name")
    readonly_fields = ("created_at", "updated_at", "last_seen_at", "lsn")

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if obj is not None and live_players().where(obj.player_id) is not None:
            return False
        return super().has_change_permission(request, obj)

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        obj = self.get_object(request, object_id)
        if obj is not None and request.method == "GET":
            node = live_players().where(obj.player_id)
            if node is not None:
                messages.warning(request, ONLINE_MESSAGE.format(pid=obj.player_id, node=node))
        return super().change_view(request, object_id, form_url, extra_context)

    def save_model(self, request: HttpRequest, obj: Player, form: Any, change: bool) -> None:
        if not change:
            super().save_model(request, obj, form, change)
            return
        # The state fields go through the service (above the stored LSN); the rest as is.
        written = player_state_force(record=PlayerRecord(obj.player_id, obj.x, obj.y, obj.lsn))
        obj.lsn = written.lsn
        Player.objects.filter(pk=obj.pk).update(name=obj.name)


@admin.register(FlushDeadLetter)
class FlushDeadLetterAdmin(admin.ModelAdmin):
    list_display = ("failed_at", "batch_id", "entity_kind", "entities", "attempts", "error")
    search_fields = ("batch_id",)
    readonly_fields = (
        "failed_at", "batch_id", "entity_kind", "entities", "attempts", "error", "payload",
    )  # fmt: skip

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

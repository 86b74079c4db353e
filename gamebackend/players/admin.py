from django.contrib import admin

from gamebackend.players.models import Player


@admin.register(Player)
class PlayerAdmin(admin.ModelAdmin):
    list_display = ("player_id", "name", "x", "y", "rev", "last_seen_at")
    search_fields = ("player_id", "name")
    readonly_fields = ("created_at", "updated_at", "last_seen_at", "rev")

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from gamebackend.events.models import Event


@admin.register(Event)
class EventAdmin(admin.ModelAdmin):
    list_display = ("at", "type", "node", "data")
    list_filter = ("type",)
    search_fields = ("node",)
    date_hierarchy = "at"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

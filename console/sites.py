"""The operator console: Django's admin with a live dashboard as its index and the live
pages (sessions, rooms, actors, limits and breakers) as admin views (console/pages.py)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.urls import path

PLAY_URL = "/play/"


class ConsoleSite(admin.AdminSite):
    site_header = "gamebackend console"
    site_title = "gamebackend console"
    index_title = "Live operations"
    site_url = PLAY_URL  # "View site": the play page
    index_template = "console/dashboard.html"
    # The sidebar costs 300 px that the rule lists need at 1280 px.
    enable_nav_sidebar = False

    def get_urls(self) -> list[Any]:
        from console import pages, snapshot_pages

        def view(fn: Any) -> Any:
            def wrapped(request: HttpRequest, **kwargs: Any) -> HttpResponse:
                return fn(self, request, **kwargs)

            return self.admin_view(wrapped)

        custom = [
            path("live.json", view(pages.live_json), name="console_live"),
            path("sessions/", view(pages.sessions), name="console_sessions"),
            path("sessions/<str:player_id>/", view(pages.session_detail), name="console_session"),
            path(
                "sessions/<str:player_id>/describe/",
                view(pages.session_describe),
                name="console_session_describe",
            ),
            path(
                "sessions/<str:player_id>/<str:action>/",
                view(pages.session_action),
                name="console_session_action",
            ),
            path("rooms/", view(pages.rooms), name="console_rooms"),
            path("rooms/<str:room>/close/", view(pages.room_action), name="console_room_close"),
            path("actors/", view(pages.actors), name="console_actors"),
            path("flow/", view(pages.flow), name="console_flow"),
            path("flow/breaker/<str:action>/", view(pages.breaker_action), name="console_breaker"),
            path("snapshots/", view(snapshot_pages.snapshots), name="console_snapshots"),
            path(
                "snapshots/take/",
                view(snapshot_pages.snapshot_take_now),
                name="console_snapshot_take",
            ),
            path(
                "snapshots/<int:snapshot_id>/restore/",
                view(snapshot_pages.snapshot_restore_page),
                name="console_snapshot_restore",
            ),
        ]
        return custom + super().get_urls()

    def each_context(self, request: HttpRequest) -> dict[str, Any]:
        from console.pages import can_operate

        context = super().each_context(request)
        context["can_operate"] = can_operate(request.user)
        return context

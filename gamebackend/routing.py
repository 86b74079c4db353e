"""WebSocket URL routes."""

from __future__ import annotations

from django.urls import path

from gamebackend.gateway.consumer import GameConsumer

websocket_urlpatterns = [
    path("ws/game/", GameConsumer.as_asgi()),
]

"""ASGI entry point: HTTP goes to Django (behind the body-size guard), WebSockets to the
Channels router."""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gamebackend.settings")

# Django must be set up before anything imports models (the routing does).
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from gamebackend.bodylimit import BodyLimit, configured_limits  # noqa: E402
from gamebackend.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        # Oversized bodies are refused before Django reads them (gamebackend/bodylimit.py).
        "http": BodyLimit(django_asgi_app, configured_limits()),
        "websocket": URLRouter(websocket_urlpatterns),
    }
)

"""The browser play page (``/play/``): a canvas, the JavaScript SDK and the page's script.

The page itself is static markup: everything it needs to know (the room, the WebSocket
address, how the visitor logs in) rides in ``data-`` attributes, because the node's
Content-Security-Policy (``console/middleware.py``) runs no inline script. The SDK is served
as plain ES modules from this app's static files (``static/gameclient/``).
"""

from __future__ import annotations

import re
from typing import Final

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_safe

from gameproto.rooms import DEFAULT_TICK_RATE, ROOM_ID_PATTERN

# The room a visitor joins when the URL names none.
DEFAULT_ROOM: Final = "arena"
WS_PATH: Final = "/ws/game/"
_ROOM_ID = re.compile(ROOM_ID_PATTERN)
HTTP_BAD_REQUEST: Final = 400


@require_safe
def play(request: HttpRequest) -> HttpResponse:
    room = request.GET.get("room", "") or DEFAULT_ROOM
    wants_guest = request.GET.get("guest") == "1"
    scheme = "wss" if request.is_secure() else "ws"
    valid = _ROOM_ID.fullmatch(room) is not None
    context = {
        "room": room if valid else DEFAULT_ROOM,
        "room_error": None if valid else room,
        "ws_url": f"{scheme}://{request.get_host()}{WS_PATH}",
        # A guest only where the node issues guest tickets; otherwise the device login.
        "guest": wants_guest and settings.GAME_ALLOW_GUESTS,
        "guests_allowed": settings.GAME_ALLOW_GUESTS,
        "tick_rate": DEFAULT_TICK_RATE,
    }
    return render(request, "play/play.html", context, status=200 if valid else HTTP_BAD_REQUEST)

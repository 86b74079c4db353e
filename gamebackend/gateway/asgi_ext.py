"""ASGI extensions the gateway consumer speaks with the node's server.

- ``websocket.http.response`` (the ASGI WebSocket denial-response extension): a refused
  upgrade is answered with an HTTP status and a JSON body naming the reason, instead of a
  bare 403. Used whenever the server advertises it in ``scope["extensions"]``.
- ``game.ping`` (this project's own, served by ``gamebackend.server.uvicorn_server``):
  the server hands protocol-level WebSocket pings to the application instead of
  answering them itself, so they are rate-limited like application pings (``ws.control``).
  The application opts in by accepting with ``DEFER_PINGS_KEY: True``; a ping then
  arrives as ``{"type": PING_EVENT, "bytes": payload}`` and is answered by sending
  ``{"type": PONG_EVENT, "bytes": payload}``.
"""

from __future__ import annotations

from typing import Final

DENIAL_EXTENSION: Final = "websocket.http.response"
PING_EXTENSION: Final = "game.ping"
DEFER_PINGS_KEY: Final = "game.defer_pings"
PING_EVENT: Final = "game.ws_ping"
PONG_EVENT: Final = "game.ws_pong"

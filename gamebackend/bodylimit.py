"""Request body limits per path, enforced before the body is read (ASGI middleware).

Django reads a request's whole body (into memory, then a temporary file) before any view
can look at its size, so a view's own check comes too late: a client can make the node
store gigabytes first. ``BodyLimit`` sits in front of Django: a ``Content-Length`` over
the path's limit is answered 413 without reading a byte, and a body without one
(chunked) is cut off as soon as it passes the limit (the app is told the client went
away, and the client gets the 413). ``/api/`` answers JSON like the rest of the API.

The limits (settings, README): ``GAME_MAX_AUTH_BODY_BYTES`` for ``/api/auth/``,
``GAME_MAX_CONSOLE_BODY_BYTES`` for ``/console/``, ``GAME_MAX_BODY_BYTES`` for every
other path. What a server buffers before the app is called is the server's business:
see ``gamebackend.server`` for Daphne.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "API_PREFIX",
    "AUTH_PREFIX",
    "CONSOLE_PREFIX",
    "BodyLimit",
    "BodyLimits",
    "configured_limits",
    "too_large_response",
]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Any, Any, Any], Awaitable[None]]

API_PREFIX = "/api/"
AUTH_PREFIX = "/api/auth/"
CONSOLE_PREFIX = "/console/"
logger = logging.getLogger(__name__)

STATUS_TOO_LARGE = 413


@dataclass(frozen=True)
class BodyLimits:
    """Longest request body per path prefix (first match wins), else ``default``."""

    by_prefix: Sequence[tuple[str, int]]
    default: int

    def limit_for(self, path: str) -> int:
        for prefix, limit in self.by_prefix:
            if path.startswith(prefix):
                return limit
        return self.default

    @property
    def largest(self) -> int:
        return max([self.default, *(limit for _, limit in self.by_prefix)])


def configured_limits() -> BodyLimits:
    """The limits from the settings (README's configuration table)."""
    from django.conf import settings

    return BodyLimits(
        by_prefix=(
            (AUTH_PREFIX, settings.GAME_MAX_AUTH_BODY_BYTES),
            (CONSOLE_PREFIX, settings.GAME_MAX_CONSOLE_BODY_BYTES),
        ),
        default=settings.GAME_MAX_BODY_BYTES,
    )


def too_large_response(path: str, limit: int) -> tuple[list[tuple[bytes, bytes]], bytes]:
    """Headers and body of the 413 for ``path``: JSON under ``/api/``, text elsewhere."""
    message = f"the request body is larger than {limit} bytes"
    if path.startswith(API_PREFIX):
        body = json.dumps({"error": {"code": "too_large", "message": message}}).encode()
        content_type = b"application/json"
    else:
        body = f"413 Payload Too Large: {message}\n".encode()
        content_type = b"text/plain; charset=utf-8"
    headers = [
        (b"content-type", content_type),
        (b"content-length", str(len(body)).encode()),
        # The rest of the body is never read: the connection cannot carry another request.
        (b"connection", b"close"),
    ]
    return headers, body


def _declared_length(scope: Scope) -> int | None:
    """The Content-Length header, or None when absent or unusable (then bytes are counted)."""
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            text = value.decode("latin-1").strip()
            return int(text) if text.isdigit() else None
    return None


class BodyLimit:
    """ASGI middleware: refuse an HTTP request body over its path's limit, unread."""

    def __init__(self, app: ASGIApp, limits: BodyLimits) -> None:
        self.app = app
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = str(scope.get("path", ""))
        limit = self.limits.limit_for(path)
        declared = _declared_length(scope)
        if declared is not None and declared > limit:
            await self._refuse(send, scope, limit, declared)
            return
        received = 0
        over = False
        started = False

        async def limited_receive() -> Message:
            nonlocal received, over
            if over:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    # Stop here: to the app the client went away (Django drops the request
                    # unanswered); the client gets the 413 below.
                    over = True
                    return {"type": "http.disconnect"}
            return message

        async def tracked_send(message: Message) -> None:
            nonlocal started
            if over and not started:
                return  # whatever the app still says, the answer is the 413
            started = started or message["type"] == "http.response.start"
            await send(message)

        await self.app(scope, limited_receive, tracked_send)
        if over and not started:
            await self._refuse(send, scope, limit, received)

    @staticmethod
    async def _refuse(send: Send, scope: Scope, limit: int, size: int) -> None:
        path = str(scope.get("path", ""))
        client = scope.get("client") or ("?", 0)
        logger.info(
            "request body to %s from %s refused: %d+ bytes, limit %d", path, client[0], size, limit
        )
        headers, body = too_large_response(path, limit)
        await send({"type": "http.response.start", "status": STATUS_TOO_LARGE, "headers": headers})
        await send({"type": "http.response.body", "body": body})

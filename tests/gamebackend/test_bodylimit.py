"""The request-body guard in front of Django (any ASGI server), in process."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable
from typing import Any

import pytest

from gamebackend.bodylimit import BodyLimit, BodyLimits, configured_limits

LIMITS = BodyLimits(by_prefix=(("/api/auth/", 100), ("/console/", 1000)), default=500)


class Recorder:
    """A downstream app that reads the whole body, then answers 200 with its length."""

    def __init__(self) -> None:
        self.called = False
        self.read: list[dict[str, Any]] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.called = True
        size = 0
        while True:
            message = await receive()
            self.read.append(message)
            if message["type"] == "http.disconnect":
                return  # as Django does: no answer to a client that went away
            size += len(message.get("body", b""))
            if not message.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": str(size).encode()})


def http_scope(path: str, length: int | None = None) -> dict[str, Any]:
    headers = [(b"host", b"localhost")]
    if length is not None:
        headers.append((b"content-length", str(length).encode()))
    return {
        "type": "http", "http_version": "1.1", "method": "POST", "scheme": "http",
        "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
        "headers": headers, "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8000),
    }  # fmt: skip


async def run(app: Any, scope: dict[str, Any], chunks: Iterable[bytes]) -> list[dict[str, Any]]:
    pending = [{"type": "http.request", "body": chunk, "more_body": True} for chunk in chunks]
    if pending:
        pending[-1]["more_body"] = False
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        if pending:
            return pending.pop(0)
        await asyncio.Event().wait()  # as a server does: nothing more until the client leaves
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent


def status_of(sent: list[dict[str, Any]]) -> int:
    starts = [m for m in sent if m["type"] == "http.response.start"]
    assert len(starts) == 1, sent
    return int(starts[0]["status"])


def body_of(sent: list[dict[str, Any]]) -> bytes:
    return b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")


def header(sent: list[dict[str, Any]], name: bytes) -> bytes:
    start = next(m for m in sent if m["type"] == "http.response.start")
    return dict(start["headers"])[name]


async def test_a_declared_length_over_the_limit_is_refused_unread() -> None:
    app = Recorder()
    sent = await run(BodyLimit(app, LIMITS), http_scope("/api/auth/guest", 101), [b"x" * 101])
    assert not app.called
    assert status_of(sent) == 413
    assert header(sent, b"content-type") == b"application/json"
    assert header(sent, b"connection") == b"close"
    error = json.loads(body_of(sent))["error"]
    assert error["code"] == "too_large"
    assert "100 bytes" in error["message"]


async def test_a_streamed_body_is_cut_off_once_it_passes_the_limit() -> None:
    app = Recorder()
    chunks = [b"x" * 40] * 10  # no Content-Length: 400 bytes against a limit of 100
    sent = await run(BodyLimit(app, LIMITS), http_scope("/api/auth/guest"), chunks)
    assert status_of(sent) == 413
    # The app read up to the limit and was then told the client went away.
    assert [m["type"] for m in app.read] == ["http.request"] * 2 + ["http.disconnect"]


@pytest.mark.parametrize(
    ("path", "size", "status"),
    [
        ("/api/auth/guest", 100, 200),
        ("/api/auth/guest", 101, 413),
        ("/console/login/", 1000, 200),
        ("/console/login/", 1001, 413),
        ("/readyz", 500, 200),
        ("/readyz", 501, 413),
        ("/api/other", 501, 413),
    ],
)
async def test_limits_per_path(path: str, size: int, status: int) -> None:
    for declared in (size, None):
        sent = await run(BodyLimit(Recorder(), LIMITS), http_scope(path, declared), [b"x" * size])
        assert status_of(sent) == status
        if status == 200:
            assert body_of(sent) == str(size).encode()
        elif not path.startswith("/api/"):
            assert header(sent, b"content-type").startswith(b"text/plain")


async def test_websockets_pass_untouched() -> None:
    seen: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope["type"])

    async def never(*args: Any) -> Any:
        raise AssertionError("the guard must not touch a non-HTTP connection")

    await BodyLimit(app, LIMITS)({"type": "websocket", "path": "/ws/game/"}, never, never)
    await BodyLimit(app, LIMITS)({"type": "lifespan"}, never, never)
    assert seen == ["websocket", "lifespan"]


def test_configured_limits_follow_the_settings(settings: Any) -> None:
    settings.GAME_MAX_AUTH_BODY_BYTES = 2048
    settings.GAME_MAX_CONSOLE_BODY_BYTES = 65536
    settings.GAME_MAX_BODY_BYTES = 4096
    limits = configured_limits()
    assert limits.limit_for("/api/auth/login") == 2048
    assert limits.limit_for("/console/flow/") == 65536
    assert limits.limit_for("/api/rooms") == 4096
    assert limits.largest == 65536


@pytest.mark.django_db(transaction=True)
async def test_django_behind_the_guard_answers_413_and_keeps_small_requests() -> None:
    from gamebackend.asgi import application

    limit = configured_limits().limit_for("/api/auth/guest")
    over = [b" " * 1024] * (limit // 1024 + 1)
    sent = await run(application, http_scope("/api/auth/guest"), over)
    assert status_of(sent) == 413
    assert json.loads(body_of(sent))["error"]["code"] == "too_large"
    # A console form well over the auth limit reaches Django (and its CSRF check).
    form = [b"username=op&password=" + b"x" * (2 * limit)]
    sent = await run(application, http_scope("/console/login/", len(form[0])), form)
    assert status_of(sent) == 403

"""Request bodies over their path's limit are refused by a real node before it reads them."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass

import pytest

from gamebackend.bodylimit import configured_limits
from tests.nodes import Node

pytestmark = pytest.mark.slow
READ_TIMEOUT_S = 10.0
# The shipped limits (the node runs with the defaults).
LIMITS = configured_limits()
AUTH_LIMIT = LIMITS.limit_for("/api/auth/guest")
CONSOLE_LIMIT = LIMITS.limit_for("/console/login/")
DEFAULT_LIMIT = LIMITS.limit_for("/healthz")


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> object:
        return json.loads(self.body)


async def read_response(reader: asyncio.StreamReader) -> Response:
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), READ_TIMEOUT_S)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    size = int(headers.get("content-length", "0"))
    body = await asyncio.wait_for(reader.readexactly(size), READ_TIMEOUT_S)
    return Response(status, headers, body)


async def post(
    node: Node,
    path: str,
    *,
    declared: int | None = None,
    body: bytes = b"",
    chunks: list[bytes] | None = None,
    content_type: str = "application/json",
) -> Response:
    """POST over a raw socket: ``declared`` Content-Length (the body may be shorter: the
    rest is never sent), or ``chunks`` sent chunked without the final empty chunk."""
    reader, writer = await asyncio.open_connection("127.0.0.1", node.port)
    try:
        head = [f"POST {path} HTTP/1.1", f"Host: 127.0.0.1:{node.port}",
                f"Content-Type: {content_type}"]  # fmt: skip
        if chunks is None:
            head.append(f"Content-Length: {len(body) if declared is None else declared}")
        else:
            head.append("Transfer-Encoding: chunked")
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode())
        writer.write(body)
        for chunk in chunks or []:
            writer.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
            await writer.drain()
        await writer.drain()
        return await read_response(reader)
    finally:
        writer.close()


async def test_a_declared_body_over_the_limit_is_refused_before_it_is_sent(node: Node) -> None:
    # Regression: the node read (and stored) the whole body before refusing it. Here the
    # body is never sent at all: the answer must come from the headers alone.
    response = await post(node, "/api/auth/guest", declared=10_000_000_000)
    assert response.status == 413
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {
        "error": {"code": "too_large",
                  "message": f"the request body is larger than {AUTH_LIMIT} bytes"},
    }  # fmt: skip
    assert "request body to /api/auth/guest from 127.0.0.1 refused" in node.log()


async def test_a_chunked_body_is_cut_off_once_it_passes_the_limit(node: Node) -> None:
    # No length given and the body never ends: the answer comes once the limit is passed.
    chunks = [b" " * 1024] * (AUTH_LIMIT // 1024 + 1)
    response = await post(node, "/api/auth/guest", chunks=chunks)
    assert response.status == 413
    assert response.json()["error"]["code"] == "too_large"  # type: ignore[index]


async def test_limits_are_per_path(node: Node) -> None:
    # The console takes forms larger than the auth API's limit (this one fails CSRF)...
    form = b"username=operator&password=" + b"x" * (2 * AUTH_LIMIT)
    console = await post(node, "/console/login/", body=form,
                         content_type="application/x-www-form-urlencoded")  # fmt: skip
    assert console.status == 403
    # ...but not larger than its own; and every other path has the default limit.
    assert (await post(node, "/console/login/", declared=CONSOLE_LIMIT + 1)).status == 413
    refused = await post(node, "/healthz", declared=DEFAULT_LIMIT + 1)
    assert refused.status == 413
    assert refused.headers["content-type"].startswith("text/plain")
    # A normal API request is unaffected.
    guest = await post(node, "/api/auth/guest", body=b'{"name": "Ann"}')
    assert guest.status == 201

"""A raw protocol client for end-to-end tests: frames as dicts, nothing hidden."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import msgspec
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

RECV_TIMEOUT_S = 10.0


class Raw:
    def __init__(self, ws: ClientConnection, *, binary: bool = False) -> None:
        self.ws = ws
        self.binary = binary
        self.pings = 0

    @classmethod
    async def open(cls, url: str, *, binary: bool = False, **kwargs: Any) -> Raw:
        if binary:
            kwargs.setdefault("subprotocols", ["game.v1.msgpack"])
        kwargs.setdefault("compression", None)
        ws = await connect(url, max_size=None, **kwargs)
        return cls(ws, binary=binary)

    async def send(self, obj: Any) -> None:
        if self.binary:
            await self.ws.send(msgspec.msgpack.encode(obj))
        else:
            await self.ws.send(json.dumps(obj))

    async def recv(self, *, answer_pings: bool = True, timeout: float = RECV_TIMEOUT_S) -> Any:
        while True:
            frame = await asyncio.wait_for(self.ws.recv(), timeout)
            msg = msgspec.msgpack.decode(frame) if isinstance(frame, bytes) else json.loads(frame)
            if msg.get("type") == "ping" and "seq" not in msg:
                self.pings += 1
                if answer_pings:
                    await self.send({"type": "pong", "ts": msg["ts"]})
                    continue
            return msg

    async def answer_pings_until(self, count: int) -> None:
        """Answer server pings until ``count`` have arrived (other messages must not come)."""
        while self.pings < count:
            msg = await self.recv(answer_pings=False)
            assert msg.get("type") == "ping", msg
            await self.send({"type": "pong", "ts": msg["ts"]})

    async def request(self, obj: Any) -> Any:
        """Send ``obj`` (which carries an ``id``) and return the reply with that ``re``."""
        await self.send(obj)
        while True:
            msg = await self.recv()
            if msg.get("re") == obj["id"]:
                return msg

    async def drain(self, *, answer_pings: bool = True, timeout: float = RECV_TIMEOUT_S) -> None:
        """Read (and drop) messages until the connection closes, which raises."""
        while True:
            await self.recv(answer_pings=answer_pings, timeout=timeout)

    async def collect_until_closed(self) -> tuple[list[Any], int]:
        """Every message until the server closes, and its close code."""
        messages: list[Any] = []
        try:
            while True:
                messages.append(await self.recv())
        except ConnectionClosed as exc:
            closed = exc
        if closed.rcvd is None:
            raise AssertionError("connection dropped without a close frame")
        return messages, int(closed.rcvd.code)

    async def closed_with(self, timeout: float = RECV_TIMEOUT_S) -> int:
        """Read until the server closes; the close code (a close frame is required)."""
        try:
            await self.drain(timeout=timeout)
        except ConnectionClosed as exc:
            closed = exc
        if closed.rcvd is None:
            raise AssertionError("connection dropped without a close frame")
        return int(closed.rcvd.code)

    async def close(self, code: int = 1000) -> None:
        await self.ws.close(code)


async def refused_status(url: str, **kwargs: Any) -> int | None:
    """The HTTP status of a refused upgrade, or None if it was accepted."""
    refusal = await refused(url, **kwargs)
    return None if refusal is None else refusal[0]


async def refused(url: str, **kwargs: Any) -> tuple[int, Any] | None:
    """(HTTP status, JSON body or None) of a refused upgrade, or None if it was accepted."""
    try:
        ws = await connect(url, **kwargs)
    except InvalidStatus as exc:
        body: Any = None
        if exc.response.headers.get("Content-Type") == "application/json":
            body = json.loads(exc.response.body or b"null")
        return int(exc.response.status_code), body
    await ws.close()
    return None

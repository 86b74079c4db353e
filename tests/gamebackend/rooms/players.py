"""A raw-protocol player for the rooms end-to-end tests: keeps every message, acks as it goes."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import Any

from tests.gateway.wsclient import Raw
from tests.nodes import Node

RECV_TIMEOUT_S = 10.0
# Ack at least this often (the server keeps un-acked messages, up to GAME_OUTBOX_MAX).
ACK_EVERY = 16


def new_id(prefix: str = "p") -> str:
    return f"{prefix}{uuid.uuid4().hex[:10]}"


class Player:
    def __init__(self, raw: Raw, player_id: str, welcome: dict[str, Any]) -> None:
        self.raw = raw
        self.player_id = player_id
        self.welcome = welcome
        self.seen: list[dict[str, Any]] = []
        self.last_seq = 0
        self._acked = 0
        self._ids = 0

    @classmethod
    async def connect(cls, node: Node, player_id: str | None = None, **query: Any) -> Player:
        player_id = player_id or new_id()
        raw = await Raw.open(node.url(player_id, **query))
        welcome = await raw.recv()
        assert welcome["type"] == "welcome", welcome
        player = cls(raw, player_id, welcome)
        if not welcome["resumed"]:
            await player.until(lambda m: m["type"] == "state")
        return player

    async def recv(self, timeout: float = RECV_TIMEOUT_S) -> dict[str, Any]:
        msg: dict[str, Any] = await self.raw.recv(timeout=timeout)
        seq = msg.get("seq")
        if seq is not None:
            assert seq == self.last_seq + 1, f"seq {seq} after {self.last_seq}: {msg}"
            self.last_seq = seq
            if seq - self._acked >= ACK_EVERY:
                await self.raw.send({"type": "ack", "seq": seq})
                self._acked = seq
        self.seen.append(msg)
        return msg

    async def until(
        self, predicate: Callable[[dict[str, Any]], bool], timeout: float = RECV_TIMEOUT_S
    ) -> dict[str, Any]:
        """Read (keeping everything) until a message matches ``predicate``; return it."""
        async with asyncio.timeout(timeout):
            while True:
                msg = await self.recv()
                if predicate(msg):
                    return msg

    async def send(self, msg: dict[str, Any]) -> None:
        await self.raw.send(msg)

    async def request(self, msg: dict[str, Any]) -> dict[str, Any]:
        self._ids += 1
        req_id = f"{msg['type']}-{self._ids}"
        await self.raw.send({**msg, "id": req_id})
        return await self.until(lambda m: m.get("re") == req_id)

    async def join(self, room: str, **create: Any) -> dict[str, Any]:
        msg: dict[str, Any] = {"type": "join", "room": room}
        if create:
            msg["create"] = create
        reply = await self.request(msg)
        assert reply["type"] == "joined", reply
        return reply

    async def frame(self, room: str, min_tick: int = 0) -> dict[str, Any]:
        return await self.until(
            lambda m: m["type"] == "frame" and m["room"] == room and m["tick"] >= min_tick
        )

    def frames(self, room: str) -> list[dict[str, Any]]:
        return [m for m in self.seen if m["type"] == "frame" and m["room"] == room]

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [m for m in self.seen if m["type"] == kind]

    async def close(self, code: int = 1000) -> None:
        await self.raw.close(code)

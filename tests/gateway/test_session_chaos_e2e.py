"""Chaos test 4: 2,000 players x 10 moves with random disconnects and resumes.

One real node (``make run``'s ``runnode``: the server and its Celery worker, single-machine
profile) and 2,000 players driven from this process on one event loop. Each player moves
10 times; now and then its connection is dropped (TCP abort) and resumed as a client that
lost the last few frames in flight. Every client must see every message exactly once
(seqs 1..N, each once, the replayed ones equal to what was sent), and after the players
leave, the database must hold every player's final actor state.
"""

from __future__ import annotations

import asyncio
import json
import random
import secrets
import sqlite3
import uuid
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect

from gameproto.tickets import mint_ticket
from tests.procs import running_node

pytestmark = pytest.mark.slow

PLAYERS = 2000
MOVES = 10
# Players connected at once (the node's per-address connection cap is raised above it).
CONCURRENCY = 500
DISCONNECT_PROBABILITY = 0.25
SEED = 20261203
RECV_TIMEOUT_S = 30.0
# The last states reach the database through the flush path after the players leave.
DATABASE_BOUND_S = 120.0


class ChaosPlayer:
    def __init__(self, url: str, secret: str, index: int) -> None:
        self.url = url
        self.secret = secret
        self.player_id = f"chaos{index}-{uuid.uuid4().hex[:6]}"
        self.rng = random.Random(SEED + index)
        self.stream: list[dict[str, Any]] = []  # every message delivered, in order
        self.acked = 0
        self.session_id = ""
        self.resumes = 0
        self.final: tuple[float, float] | None = None

    async def _open(self, **query: object) -> tuple[ClientConnection, dict[str, Any]]:
        ticket = mint_ticket(secret=self.secret, sub=self.player_id)
        params = "".join(f"&{k}={v}" for k, v in query.items())
        ws = await connect(f"{self.url}?ticket={ticket}{params}", compression=None)
        welcome = json.loads(await asyncio.wait_for(ws.recv(), RECV_TIMEOUT_S))
        assert welcome["type"] == "welcome", welcome
        return ws, welcome

    async def _recv(self, ws: ClientConnection) -> dict[str, Any]:
        while True:
            msg = json.loads(await asyncio.wait_for(ws.recv(), RECV_TIMEOUT_S))
            if msg["type"] == "ping" and "seq" not in msg:
                await ws.send(json.dumps({"type": "pong", "ts": msg["ts"]}))
                continue
            return msg

    def _deliver(self, msg: dict[str, Any]) -> None:
        expected = len(self.stream) + 1
        assert msg["seq"] == expected, (self.player_id, msg, expected)  # once, in order
        self.stream.append(msg)

    async def run(self) -> None:
        ws, welcome = await self._open()
        self.session_id = welcome["session_id"]
        self._deliver(await self._recv(ws))
        for i in range(1, MOVES + 1):
            x, y = float(self.rng.randrange(10_000)), float(i)
            await ws.send(json.dumps({"type": "move", "x": x, "y": y, "id": i}))
            while True:
                msg = await self._recv(ws)
                self._deliver(msg)
                if msg.get("re") == i:
                    break
            if self.rng.random() < 0.5:
                self.acked = len(self.stream)
                await ws.send(json.dumps({"type": "ack", "seq": self.acked}))
            if self.rng.random() < DISCONNECT_PROBABILITY:
                ws = await self._drop_and_resume(ws)
        last = self.stream[-1]
        self.final = (last["x"], last["y"])
        await ws.close(1000)  # the player leaves: the session ends, the actor stops

    async def _drop_and_resume(self, ws: ClientConnection) -> ClientConnection:
        """Drop the TCP connection as if the last few frames never arrived, and resume."""
        assert ws.transport is not None
        ws.transport.abort()
        lost = self.rng.randint(0, len(self.stream) - self.acked)
        kept = len(self.stream) - lost
        replay_expected, self.stream = self.stream[kept:], self.stream[:kept]
        ws, welcome = await self._open(resume=self.session_id, last_seq=kept)
        assert (welcome["resumed"], welcome["session_id"]) == (True, self.session_id)
        assert "restored" not in welcome  # the same node: the live session, not L2
        self.acked = kept  # resuming at last_seq acknowledges everything up to it
        self.resumes += 1
        for expected in replay_expected:
            msg = await self._recv(ws)
            assert msg == expected  # the same message again, exactly once
            self._deliver(msg)
        return ws


def stored_positions(db_path: Path) -> dict[str, tuple[float, float]]:
    with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True) as db:
        rows = db.execute(
            "SELECT player_id, x, y FROM players_player WHERE player_id LIKE 'chaos%'"
        ).fetchall()
    db.close()
    return {str(p): (float(x), float(y)) for p, x, y in rows}


async def test_2000_players_with_random_disconnects_see_every_message_once_and_are_saved(
    tmp_path: Path,
) -> None:
    secret = secrets.token_urlsafe(32)
    var_dir = tmp_path / "var"
    with running_node(
        var_dir,
        GAME_JWT_SECRET=secret,
        GAME_RATE_LIMITS="0",
        GAME_MAX_CONNS_PER_IP=str(CONCURRENCY * 2),
        GAME_ACCESS_LOG="0",
    ) as (base_url, _proc):
        url = base_url.replace("http://", "ws://") + "/ws/game/"
        players = [ChaosPlayer(url, secret, i) for i in range(PLAYERS)]
        gate = asyncio.Semaphore(CONCURRENCY)

        async def run(player: ChaosPlayer) -> None:
            async with gate:
                await player.run()

        await asyncio.gather(*(run(pl) for pl in players))
        assert sum(pl.resumes for pl in players) > PLAYERS // 2  # the chaos happened
        for pl in players:
            assert [m["seq"] for m in pl.stream] == list(range(1, len(pl.stream) + 1))
        expected = {pl.player_id: pl.final for pl in players}
        async with asyncio.timeout(DATABASE_BOUND_S):
            while True:
                stored = await asyncio.to_thread(stored_positions, var_dir / "db.sqlite3")
                if stored == expected:
                    break
                await asyncio.sleep(0.5)

"""Chaos tests of the flush path in the cluster profile (real node, real Celery worker).

Chaos 2: a Redis the test started itself (broker, channel layer) is paused for 10 s with
SIGSTOP/SIGCONT: the players keep playing, the flushes catch up afterwards, and every row
equals the player's last acknowledged state.

Chaos 3: PostgreSQL unreachable for 30 s through a proxy the test owns (``TcpProxy``). While the
database is away the players keep playing (their replies come from the live actors), the
node's backlog stays bounded (coalesced: at most one version per player) and /readyz says
``degraded``, the worker's ``db.flush`` breaker opens; when it is back the breaker closes
and every row equals the player's last acknowledged state: nothing lost.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest

from tests.gamebackend.players.chaos import start_worker, stop, wait_for
from tests.gamebackend.players.tcpproxy import TcpProxy
from tests.gateway.wsclient import Raw
from tests.nodes import NodeFactory
from tests.procs import free_port, http_get

pytestmark = [pytest.mark.slow, pytest.mark.cluster]
PLAYERS = 5
OUTAGE_S = 30.0
MOVE_EVERY_S = 0.5
RECOVERY_TIMEOUT_S = 45.0
REDIS_PAUSE_S = 10.0
# The first commit waits for the worker to start (slow on a loaded 2-core machine).
FIRST_COMMIT_TIMEOUT_S = 60.0
# A move's reply while Redis is paused: the live actor answers, no Redis on the path.
REPLY_TIMEOUT_S = 2.0


def worker_tail(tmp_path: Path) -> str:
    return "\n".join((tmp_path / "worker.log").read_text(errors="replace").splitlines()[-30:])


def rows(database_url: str, players: list[str]) -> dict[str, tuple[float, int]]:
    """The test's players' rows (a shared test Redis may hand this worker other tests'
    leftover batches: their rows are not this test's business)."""
    import psycopg

    with psycopg.connect(database_url, connect_timeout=5) as conn:
        found = conn.execute(
            "SELECT player_id, x, lsn FROM players_player WHERE player_id = ANY(%s)", (players,)
        ).fetchall()
    return {pid: (float(x), int(lsn)) for pid, x, lsn in found}


async def test_postgresql_away_for_30s_nothing_is_lost(
    node_factory: NodeFactory, cluster_env: dict[str, str], tmp_path: Path
) -> None:
    real_url = cluster_env["DATABASE_URL"]
    target = urlparse(real_url)
    proxy = TcpProxy(target.hostname or "127.0.0.1", target.port or 5432)
    proxied = target._replace(netloc=f"{target.username}@127.0.0.1:{proxy.port}").geturl()
    env = {**cluster_env, "DATABASE_URL": proxied, "GAME_FLUSH_REDELIVER_S": "2"}
    node = node_factory(**env)
    worker = start_worker(node.env, tmp_path / "worker.log")
    players = [f"pg{i}" for i in range(PLAYERS)]
    try:
        sockets: list[Raw] = []
        for pid in players:
            raw = await Raw.open(node.url(pid))
            assert (await raw.recv())["type"] == "welcome"
            await raw.recv()
            sockets.append(raw)
        last: dict[str, tuple[float, int]] = {}
        req = 0

        async def play_round() -> None:
            nonlocal req
            req += 1
            replies = await asyncio.gather(
                *(s.request({"type": "move", "x": req, "y": 1, "id": req}) for s in sockets)
            )
            for pid, reply in zip(players, replies, strict=True):
                assert reply["x"] == req
                last[pid] = (float(reply["x"]), int(reply["rev"]))

        await play_round()
        try:
            await asyncio.to_thread(
                wait_for,
                lambda: rows(real_url, players) == last,
                FIRST_COMMIT_TIMEOUT_S,
                "first commit",
            )
        except AssertionError as exc:
            raise AssertionError(f"{exc}; worker log:\n{worker_tail(tmp_path)}") from None

        proxy.down()
        degraded: list[Any] = []
        ends = time.monotonic() + OUTAGE_S
        while time.monotonic() < ends:
            await play_round()  # local play continues
            _status, body = await asyncio.to_thread(http_get, f"{node.http_url}/readyz")
            flush = body.get("checks", {}).get("flush", "") if isinstance(body, dict) else ""
            if flush.startswith("degraded: flush backlog"):
                backlog = int(flush.split("flush backlog ")[1].split(" ")[0])
                assert backlog <= PLAYERS  # coalesced: one version per player at most
                degraded.append(flush)
            await asyncio.sleep(MOVE_EVERY_S)  # pacing the players, not synchronisation
        assert degraded, "the backlog never showed in /readyz"
        proxy.up()

        await play_round()
        await asyncio.to_thread(
            wait_for, lambda: rows(real_url, players) == last, RECOVERY_TIMEOUT_S, "backlog drained"
        )
        wait_for(
            lambda: http_get(f"{node.http_url}/readyz")[1]["checks"]["flush"] == "ok",
            10.0,
            "flush check ok again",
        )
        log = (tmp_path / "worker.log").read_text()
        assert "circuit db.flush closed -> open" in log
        # It closes after its half-open probes succeed (the next batches).
        for extra in range(3):
            await play_round()
            try:
                wait_for(
                    lambda: (
                        "circuit db.flush half_open -> closed"
                        in (tmp_path / "worker.log").read_text()
                    ),
                    10.0,
                    "db.flush breaker closes",
                )
                break
            except AssertionError:
                if extra == 2:
                    raise AssertionError(f"breaker still open:\n{worker_tail(tmp_path)}") from None
        for raw in sockets:
            await raw.ws.close()
    finally:
        stop(worker)
        node.stop()
        proxy.close()


async def open_players(node: Any, players: list[str]) -> list[Raw]:
    sockets = []
    for pid in players:
        raw = await Raw.open(node.url(pid))
        assert (await raw.recv())["type"] == "welcome"
        await raw.recv()
        sockets.append(raw)
    return sockets


async def test_redis_paused_10s_play_continues_and_flushes_catch_up(
    node_factory: NodeFactory, cluster_database_url: str, tmp_path: Path
) -> None:
    import secrets

    port = free_port()
    redis = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no"],
        stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
    )  # fmt: skip
    node = worker = None
    try:
        env = {
            "DATABASE_URL": cluster_database_url,
            "REDIS_URL": f"redis://127.0.0.1:{port}/0",
            "DJANGO_SECRET_KEY": secrets.token_urlsafe(48),
            "GAME_JWT_SECRET": secrets.token_urlsafe(32),
            "GAME_FLUSH_REDELIVER_S": "2",
        }
        node = node_factory(**env)
        worker = start_worker(node.env, tmp_path / "worker.log")
        players = [f"rp{i}" for i in range(PLAYERS)]
        sockets = await open_players(node, players)
        last: dict[str, tuple[float, int]] = {}
        req = 0

        async def play_round() -> None:
            nonlocal req
            req += 1
            async with asyncio.timeout(REPLY_TIMEOUT_S):
                replies = await asyncio.gather(
                    *(s.request({"type": "move", "x": req, "y": 2, "id": req}) for s in sockets)
                )
            for pid, reply in zip(players, replies, strict=True):
                last[pid] = (float(reply["x"]), int(reply["rev"]))

        await play_round()
        await asyncio.to_thread(
            wait_for, lambda: rows(cluster_database_url, players) == last, 30.0, "commit"
        )
        redis.send_signal(signal.SIGSTOP)
        rounds = 0
        ends = time.monotonic() + REDIS_PAUSE_S
        while time.monotonic() < ends:
            await play_round()  # local play continues, every reply in time
            rounds += 1
            await asyncio.sleep(MOVE_EVERY_S)  # pacing the players, not synchronisation
        assert rounds >= REDIS_PAUSE_S / MOVE_EVERY_S / 2
        assert rows(cluster_database_url, players) != last  # nothing could be flushed meanwhile
        redis.send_signal(signal.SIGCONT)
        await play_round()
        await asyncio.to_thread(
            wait_for,
            lambda: rows(cluster_database_url, players) == last,
            RECOVERY_TIMEOUT_S,
            "caught up",
        )
        for raw in sockets:
            await raw.ws.close()
    finally:
        redis.send_signal(signal.SIGCONT)
        if worker is not None:
            stop(worker)
        if node is not None:
            node.stop()
        redis.terminate()
        redis.wait(10)

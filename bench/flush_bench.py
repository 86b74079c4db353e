"""The flush path: lag change -> committed row (p99), throughput, and the kill -9 loss window.

Run: ``.venv/bin/python bench/flush_bench.py`` (a few minutes; ``--profile single`` or
``cluster`` for one). Each profile runs a real node server and a real Celery worker
(``--pool threads --concurrency 4`` as runnode) on its own var directory; the cluster
profile uses a fresh PostgreSQL database and ``GAME_TEST_REDIS_URL`` (default db 9).

* **lag**: PLAYERS players each move once per round (ROUNDS rounds); a change's lag is the
  row's ``updated_at`` (stamped by the upsert statement) minus the moment the client got
  the reply (the actor made the version before replying). Same machine, same clock.
* **throughput**: the bench enqueues THROUGHPUT_BATCHES batches of GAME_FLUSH_BATCH
  distinct players straight to the worker's task (``flush_batch``, JSON) and times until
  the last row is committed: entities/s of the worker side of the flush path.
  Baseline in the same run: the same rows written by one ``player_states_upsert`` call
  per batch in this process (no broker, no worker).
* **loss window**: one player moves as fast as the replies come; the node is killed with
  SIGKILL; after a restart (the journal replays) the committed LSN is compared with the
  last acknowledged one; the loss is how many acknowledged versions and how many
  milliseconds of them are missing. Median of LOSS_RUNS kills.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from websockets.asyncio.client import connect

from gameproto.tickets import mint_ticket

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
PLAYERS = 200
ROUNDS = 20
ROUND_GAP_S = 0.1
THROUGHPUT_BATCHES = 300
BATCH = 64
LOSS_RUNS = 3
START_TIMEOUT_S = 60.0
COMMIT_TIMEOUT_S = 60.0
POLL_S = 0.01
REDIS_URL = os.environ.get("GAME_TEST_REDIS_URL", "redis://127.0.0.1:6379/9")
POSTGRES_URL = os.environ.get("GAME_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


def log(msg: str) -> None:
    print(f"[flush-bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


class Profile:
    def __init__(self, name: str) -> None:
        self.name = name
        self.var = Path(tempfile.mkdtemp(prefix=f"flush-bench-{name}-"))
        self.port = _free_port()
        self.secret = secrets.token_urlsafe(32)
        self.env = {
            k: v
            for k, v in os.environ.items()
            if k not in ("DATABASE_URL", "REDIS_URL", "DJANGO_SECRET_KEY", "GAME_JWT_SECRET")
        }
        self.env.update(
            DJANGO_SETTINGS_MODULE="gamebackend.settings",
            GAME_VAR_DIR=str(self.var),
            PORT=str(self.port),
            GAME_JWT_SECRET=self.secret,
            DJANGO_SECRET_KEY=secrets.token_urlsafe(48),
            GAME_ACCESS_LOG="0",
            GAME_MAX_CONNS_PER_IP="1000",
            GAME_LOG_LEVEL="WARNING",
            PYTHONUNBUFFERED="1",
        )
        self.db_name = ""
        if name == "cluster":
            import psycopg

            self.db_name = f"flushbench_{uuid.uuid4().hex[:10]}"
            with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{self.db_name}"')
            base = POSTGRES_URL.rsplit("/", 1)[0]
            self.env.update(DATABASE_URL=f"{base}/{self.db_name}", REDIS_URL=REDIS_URL)
        self.server: subprocess.Popen[bytes] | None = None
        self.worker: subprocess.Popen[bytes] | None = None
        self._manage("migrate", "--noinput")
        self._manage(
            "flowrule", "ws.connect", "--scope", "ip", "--rate", "10000", "--burst", "10000"
        )
        self._manage(
            "flowrule", "ws.move", "--scope", "player", "--rate", "10000", "--burst", "10000"
        )

    def _manage(self, *args: str) -> None:
        subprocess.run(
            [PY, "manage.py", *args], cwd=ROOT, env=self.env, check=True, capture_output=True
        )

    def start(self) -> None:
        logf = (self.var / "server.log").open("ab")
        self.server = subprocess.Popen(
            [PY, "-m", "gamebackend.server"],
            cwd=ROOT,
            env=self.env,
            stdout=logf,
            stderr=subprocess.STDOUT,
        )
        if self.worker is not None and self.worker.poll() is None:
            return self._wait_up()
        wlog = (self.var / "worker.log").open("ab")
        self.worker = subprocess.Popen(
            [PY, "-m", "celery", "-A", "gamebackend.celery", "worker", "--pool", "threads",
             "--concurrency", "4", "--without-gossip", "--without-mingle", "--loglevel", "WARNING"],
            cwd=ROOT, env=self.env, stdout=wlog, stderr=subprocess.STDOUT,
        )  # fmt: skip
        self._wait_up()

    def _wait_up(self) -> None:
        import urllib.request

        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=2):
                    return
            except OSError:
                time.sleep(0.1)
        raise SystemExit(f"node did not start: {(self.var / 'server.log').read_text()[-2000:]}")

    def kill_server(self) -> None:
        assert self.server is not None
        self.server.send_signal(signal.SIGKILL)
        self.server.wait()

    def stop(self) -> None:
        for proc in (self.server, self.worker):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()

    def cleanup(self) -> None:
        self.stop()
        if self.db_name:
            import psycopg

            with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{self.db_name}" WITH (FORCE)')

    def url(self, player: str) -> str:
        ticket = mint_ticket(secret=self.secret, sub=player)
        return f"ws://127.0.0.1:{self.port}/ws/game/?ticket={ticket}"

    def rows(self, prefix: str) -> dict[str, tuple[int, float]]:
        """player_id -> (lsn, updated_at as epoch seconds) for players starting with prefix."""
        sql = "SELECT player_id, lsn, updated_at FROM players_player WHERE player_id LIKE %s"
        if self.name == "cluster":
            import psycopg

            with psycopg.connect(self.env["DATABASE_URL"]) as conn:
                found = conn.execute(sql, (prefix + "%",)).fetchall()
            return {p: (int(lsn), at.timestamp()) for p, lsn, at in found}
        with sqlite3.connect(self.var / "db.sqlite3", timeout=10) as db:
            found = db.execute(sql.replace("%s", "?"), (prefix + "%",)).fetchall()
        db.close()
        from datetime import datetime

        return {p: (int(lsn), datetime.fromisoformat(at).timestamp()) for p, lsn, at in found}


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _open(profile: Profile, player: str) -> Any:
    ws = await connect(profile.url(player), compression=None)
    await ws.recv()  # welcome
    await ws.recv()  # state
    return ws


# The last server seq each socket saw: every move acknowledges it (piggybacked ack).
_seen: dict[int, int] = {}


async def _timed_move(ws: Any, x: float, req: int) -> tuple[dict[str, Any], float]:
    reply = await _move(ws, x, req)
    return reply, time.time()


async def _move(ws: Any, x: float, req: int) -> dict[str, Any]:
    frame: dict[str, Any] = {"type": "move", "x": x, "y": 1, "id": req}
    if id(ws) in _seen:
        frame["ack"] = _seen[id(ws)]
    await ws.send(json.dumps(frame))
    while True:
        msg = json.loads(await ws.recv())
        if "seq" in msg:
            _seen[id(ws)] = msg["seq"]
        if msg.get("re") == req:
            return msg


def _wait_rows(profile: Profile, prefix: str, want: dict[str, int]) -> dict[str, tuple[int, float]]:
    deadline = time.monotonic() + COMMIT_TIMEOUT_S
    while True:
        rows = profile.rows(prefix)
        if all(rows.get(p, (-1, 0))[0] >= lsn for p, lsn in want.items()):
            return rows
        if time.monotonic() > deadline:
            raise SystemExit("rows not committed in time")
        time.sleep(POLL_S)


async def measure_lag(profile: Profile) -> list[float]:
    prefix = f"lag{uuid.uuid4().hex[:6]}-"
    players = [f"{prefix}{i}" for i in range(PLAYERS)]
    sockets = await asyncio.gather(*(_open(profile, p) for p in players))
    lags: list[float] = []
    for rnd in range(1, ROUNDS + 1):
        replies = await asyncio.gather(*(_timed_move(ws, rnd, rnd) for ws in sockets))
        # Each reply's arrival: the change happened before it (so the lag is a lower
        # bound by the reply's delivery time, well under a millisecond here).
        acked = {p: t for p, (_, t) in zip(players, replies, strict=True)}
        want = {p: int(r["rev"]) for p, (r, _) in zip(players, replies, strict=True)}
        rows = await asyncio.to_thread(_wait_rows, profile, prefix, want)
        lags += [max(0.0, rows[p][1] - acked[p]) for p in players]
        await asyncio.sleep(ROUND_GAP_S)
    for ws in sockets:
        await ws.close()
    return lags


def measure_throughput(profile: Profile) -> tuple[float, float]:
    """(entities/s through broker + worker, entities/s of the statement alone), measured
    in a child process with the profile's settings (Django is set up once per process)."""
    env = {k: v for k, v in profile.env.items() if k != "PORT"}
    done = subprocess.run(
        [PY, __file__, "--throughput-child"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=COMMIT_TIMEOUT_S * 4,
    )  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(f"throughput child failed:\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return float(result["worker"]), float(result["statement"])


def throughput_child() -> None:
    import django

    django.setup()
    from django.db import connection

    from gamebackend.players.models import Player
    from gamebackend.players.services import player_states_upsert
    from gamebackend.players.tasks import flush_batch

    def committed(prefix: str) -> int:
        return Player.objects.filter(player_id__startswith=prefix).count()

    prefix = f"tp{uuid.uuid4().hex[:6]}-"
    batches = [
        {"id": uuid.uuid4().hex, "kind": "player", "states": [
            {"player_id": f"{prefix}{b}-{i}", "x": 1.0, "y": 1.0, "lsn": 1}
            for i in range(BATCH)
        ]}
        for b in range(THROUGHPUT_BATCHES)
    ]  # fmt: skip
    total = THROUGHPUT_BATCHES * BATCH
    start = time.perf_counter()
    for batch in batches:
        flush_batch.delay(batch)
    deadline = time.monotonic() + COMMIT_TIMEOUT_S * 3
    while committed(prefix) < total:
        if time.monotonic() > deadline:
            raise SystemExit("throughput batches not committed in time")
        time.sleep(POLL_S)
    through_worker = total / (time.perf_counter() - start)
    direct_prefix = f"dp{uuid.uuid4().hex[:6]}-"
    start = time.perf_counter()
    for b in range(THROUGHPUT_BATCHES):
        states = [
            {"player_id": f"{direct_prefix}{b}-{i}", "x": 1.0, "y": 1.0, "lsn": 1}
            for i in range(BATCH)
        ]
        player_states_upsert(states=states)
    direct = total / (time.perf_counter() - start)
    connection.close()
    print(json.dumps({"worker": through_worker, "statement": direct}))


async def measure_loss(profile: Profile) -> tuple[int, float]:
    """(acknowledged versions lost, milliseconds of acknowledged play lost) for one kill."""
    player = f"loss{uuid.uuid4().hex[:6]}"
    ws = await _open(profile, player)
    acked: list[tuple[int, float]] = []  # (lsn, ack time)
    kill_at = time.monotonic() + 1.5
    req = 0
    try:
        while time.monotonic() < kill_at:
            req += 1
            reply = await _move(ws, req, req)
            acked.append((int(reply["rev"]), time.time()))
        profile.kill_server()
    finally:
        await ws.close()
    profile.start()  # the same var dir: the journal replays
    last_lsn = acked[-1][0]
    deadline = time.monotonic() + 15
    committed = -1
    while time.monotonic() < deadline:
        committed = profile.rows(player).get(player, (-1, 0))[0]
        if committed >= last_lsn:
            break
        time.sleep(0.1)
    lost = [t for lsn, t in acked if lsn > committed]
    kept = [t for lsn, t in acked if lsn <= committed]
    # The acknowledged play lost: from the last committed version's ack to the last ack.
    window_ms = (acked[-1][1] - kept[-1]) * 1000 if lost and kept else 0.0
    return len(lost), window_ms


def run_profile(name: str) -> dict[str, Any]:
    profile = Profile(name)
    try:
        profile.start()
        log(f"{name}: node and worker up; lag ({PLAYERS} players x {ROUNDS} rounds)")
        lags = asyncio.run(measure_lag(profile))
        ordered = sorted(lags)
        log(f"{name}: throughput ({THROUGHPUT_BATCHES} batches of {BATCH})")
        through, direct = measure_throughput(profile)
        log(f"{name}: loss window ({LOSS_RUNS} kills)")
        losses = []
        for _ in range(LOSS_RUNS):
            losses.append(asyncio.run(measure_loss(profile)))
        return {
            "profile": name,
            "lag_p50_ms": statistics.median(lags) * 1000,
            "lag_p99_ms": ordered[int(len(ordered) * 0.99) - 1] * 1000,
            "lag_max_ms": ordered[-1] * 1000,
            "throughput_eps": through,
            "statement_eps": direct,
            "loss_versions_median": statistics.median(v for v, _ in losses),
            "loss_ms_median": statistics.median(ms for _, ms in losses),
            "loss_ms_max": max(ms for _, ms in losses),
        }
    finally:
        profile.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--profile", choices=["single", "cluster", "both"], default="both")
    parser.add_argument("--throughput-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.throughput_child:
        throughput_child()
        return
    names = ["single", "cluster"] if args.profile == "both" else [args.profile]
    results = [run_profile(n) for n in names]
    print(
        "| profile | lag p50 | lag p99 | lag max | flush throughput (worker) "
        "| statement alone | kill -9 loss (median / max) |"
    )
    print("|---|---|---|---|---|---|---|")
    for r in results:
        print(
            f"| {r['profile']} | {r['lag_p50_ms']:.1f} ms | {r['lag_p99_ms']:.1f} ms | "
            f"{r['lag_max_ms']:.1f} ms | {r['throughput_eps']:,.0f} entities/s | "
            f"{r['statement_eps']:,.0f} entities/s | {r['loss_versions_median']:.0f} versions, "
            f"{r['loss_ms_median']:.1f} ms / {r['loss_ms_max']:.1f} ms |"
        )


if __name__ == "__main__":
    main()

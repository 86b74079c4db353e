"""End to end: `make run`'s server command as a real process, in both profiles."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sqlite3
import time
import uuid
from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped, unused-ignore]
import pytest

from gameproto.tickets import mint_ticket
from tests.gateway.wsclient import Raw
from tests.procs import (
    ADMIN_PASSWORD,
    NODE_STOP_TIMEOUT_S,
    POLL_INTERVAL_S,
    console_login,
    http_get,
    process_group_alive,
    running_node,
)

pytestmark = pytest.mark.slow

# A killed worker is noticed within 0.5 s, restarted after 1 s and answers a ping a few
# seconds later; on a busy machine this bounds a restart that never happens.
WORKER_BACK_TIMEOUT_S = 60.0
# The actor hands a changed state to the flusher within 5 s; the worker then writes it.
STATE_SAVED_TIMEOUT_S = 30.0
# A log line at WARNING or above, in the format of settings.LOGGING.
LOGGED_WARNING = re.compile(r"^\S+ \S+ (WARNING|ERROR|CRITICAL) ", re.MULTILINE)


def assert_stops_on_sigterm(proc) -> None:
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=NODE_STOP_TIMEOUT_S)
    assert time.monotonic() - started < NODE_STOP_TIMEOUT_S
    assert proc.returncode == 0
    # Daphne and the worker ran in the supervisor's process group: all of it is gone.
    assert not process_group_alive(proc.pid)


def test_single_machine_node_is_ready_serves_console_and_stops(tmp_path: Path) -> None:
    var_dir = tmp_path / "var"
    with running_node(var_dir) as (base_url, proc):
        status, body = http_get(f"{base_url}/readyz")
        assert status == 200
        assert body["status"] == "ok"
        assert body["checks"] == {
            "database": "ok",
            "channel_layer": "ok",
            "broker": "ok",
            "worker": "ok",
            "flow_rules": "ok",
            "flush": "ok",
        }
        # Asked from this machine: the supervisor's view of the worker comes too.
        assert (body["worker_supervisor"]["state"], body["worker_supervisor"]["restarts"]) == (
            "running",
            0,
        )
        assert http_get(f"{base_url}/healthz")[0] == 200
        index = console_login(base_url, "operator", ADMIN_PASSWORD)
        assert "Log out" in index
        # Both processes started, answered and used the broker without a single warning
        # (issue 12: kombu's "No hostname was supplied", twice at every start).
        log = (var_dir / "node.log").read_text()
        assert "Connected to gamefs://:**@localhost//" in log
        assert "No hostname was supplied" not in log
        assert LOGGED_WARNING.findall(log) == []
        assert_stops_on_sigterm(proc)
    # Everything the node wrote lives under the var directory.
    assert (var_dir / "db.sqlite3").exists()
    assert (var_dir / "secrets.json").stat().st_mode & 0o777 == 0o600


@pytest.mark.cluster
def test_cluster_node_on_postgres_and_redis(tmp_path: Path, cluster_env: dict[str, str]) -> None:
    with running_node(tmp_path / "var", **cluster_env) as (base_url, proc):
        status, body = http_get(f"{base_url}/readyz")
        assert status == 200, body
        assert set(body["checks"].values()) == {"ok"}
        assert "Log out" in console_login(base_url, "operator", ADMIN_PASSWORD)
        assert_stops_on_sigterm(proc)
    # The cluster node generated no local secrets: they came from the environment.
    assert not (tmp_path / "var" / "secrets.json").exists()


def readyz(base_url: str) -> tuple[int, dict[str, Any]]:
    status, body = http_get(f"{base_url}/readyz")
    assert isinstance(body, dict), body
    return status, body


def saved_position(var_dir: Path, player_id: str) -> tuple[float, float] | None:
    with sqlite3.connect(f"file:{var_dir / 'db.sqlite3'}?mode=ro", uri=True) as db:
        row = db.execute(
            "SELECT x, y FROM players_player WHERE player_id = ?", (player_id,)
        ).fetchone()
    return None if row is None else (float(row[0]), float(row[1]))


def child_running(parent: int, command_part: str) -> psutil.Process:
    """The supervisor's child whose command line contains ``command_part``."""
    for child in psutil.Process(parent).children():
        if command_part in " ".join(child.cmdline()):
            return child
    raise AssertionError(f"no child process running {command_part!r}")


async def test_a_killed_worker_is_restarted_while_players_keep_playing(tmp_path: Path) -> None:
    """Issue 12, F2: `kill -9` of the worker used to close every player with 1001 and stop
    the node. Now the supervisor restarts the worker and nobody notices but /readyz."""
    var_dir = tmp_path / "var"
    with running_node(var_dir) as (base_url, proc):
        first_worker = child_running(proc.pid, "celery").pid
        secret = json.loads((var_dir / "secrets.json").read_text())["jwt_secret"]
        player = f"p{uuid.uuid4().hex[:12]}"
        port = base_url.rsplit(":", 1)[1]
        raw = await Raw.open(
            f"ws://127.0.0.1:{port}/ws/game/?ticket={mint_ticket(secret=secret, sub=player)}"
        )
        assert (await raw.recv())["type"] == "welcome"
        moves = 0

        async def play() -> None:
            nonlocal moves
            moves += 1
            reply = await raw.request({"type": "move", "x": moves, "y": 1, "id": moves})
            assert (reply["type"], reply["x"]) == ("state", moves), reply

        await play()
        os.kill(first_worker, signal.SIGKILL)
        seen: list[str] = []
        deadline = time.monotonic() + WORKER_BACK_TIMEOUT_S
        while True:
            assert time.monotonic() < deadline, f"worker not back; /readyz said {seen}"
            await play()  # the player is answered all along
            status, body = await asyncio.to_thread(readyz, base_url)
            supervisor = body.get("worker_supervisor", {})
            assert status == 200, body  # degraded is still ready: players are served
            if body["status"] == "degraded":
                # The worker, or the flush backlog waiting for it (sent again after
                # GAME_FLUSH_REDELIVER_S).
                if body["checks"]["worker"] != "ok":
                    assert body["checks"]["worker"].startswith("degraded: ")
                    seen.append(body["checks"]["worker"])
                else:
                    assert body["checks"]["flush"].startswith("degraded: flush backlog")
            elif seen and supervisor["restarts"] == 1 and body["status"] == "ok":
                break
            await asyncio.sleep(POLL_INTERVAL_S)  # pacing the polls, not synchronisation
        assert any("worker killed by SIGKILL" in text for text in seen), seen
        assert supervisor["pid"] != first_worker
        assert supervisor["last_exit"] == "killed by SIGKILL"
        assert proc.poll() is None
        assert http_get(f"{base_url}/healthz")[0] == 200
        # The restarted worker writes the player's progress.
        await play()
        deadline = time.monotonic() + STATE_SAVED_TIMEOUT_S
        while saved_position(var_dir, player) != (moves, 1):
            assert time.monotonic() < deadline, saved_position(var_dir, player)
            await asyncio.sleep(POLL_INTERVAL_S)
        log = (var_dir / "node.log").read_text()
        assert f"worker (pid {first_worker}) killed by SIGKILL" in log
        assert "worker restarted (pid" in log

        # The web server itself is different: its death ends the node (exit 1), so the
        # process manager above sees it (see runnode's docstring).
        child_running(proc.pid, "gamebackend.server").kill()
        assert await asyncio.to_thread(proc.wait, NODE_STOP_TIMEOUT_S) == 1
        assert not process_group_alive(proc.pid)
        await raw.ws.close()
    log = (var_dir / "node.log").read_text()
    assert "the web server killed by SIGKILL; stopping the node (exit 1)" in log

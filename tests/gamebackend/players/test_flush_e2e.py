"""The flush path end to end on a single machine: real node, real Celery worker over
kombu's filesystem broker, SQLite. Chaos 1: a worker killed with SIGKILL in the middle of
a batch (the broker already deleted the message) and the node killed too: after the
restart the journal sends the batch again and the row is right; nothing regresses."""

from __future__ import annotations

import signal
import sqlite3
from pathlib import Path

import pytest

from tests.gamebackend.players.chaos import restart_node, start_worker, stop, wait_for
from tests.gateway.wsclient import Raw
from tests.nodes import NodeFactory

pytestmark = pytest.mark.slow
# SQLite's busy timeout in the worker is 20 s: the test holds the lock for less.
FETCH_TIMEOUT_S = 15.0
COMMIT_TIMEOUT_S = 30.0


def row(db: Path, player: str) -> tuple[float, int] | None:
    with sqlite3.connect(db, timeout=5) as conn:
        found = conn.execute(
            "SELECT x, lsn FROM players_player WHERE player_id = ?", (player,)
        ).fetchone()
    conn.close()
    return None if found is None else (float(found[0]), int(found[1]))


async def test_worker_killed_mid_batch_then_node_killed_nothing_is_lost(
    node_factory: NodeFactory, tmp_path: Path
) -> None:
    node = node_factory(GAME_FLUSH_REDELIVER_S="600")  # only the restart may resend
    var = Path(node.env["GAME_VAR_DIR"])
    db, queue = var / "db.sqlite3", var / "broker" / "queue"
    worker = start_worker(node.env, tmp_path / "worker.log")
    try:
        raw = await Raw.open(node.url("chaos1"))
        assert (await raw.recv())["type"] == "welcome"
        assert (await raw.recv())["rev"] == 0
        # Warm-up: the worker commits a first version (it is up and connected).
        await raw.request({"type": "move", "x": 1, "y": 1, "id": 1})
        wait_for(lambda: row(db, "chaos1") == (1.0, 1), COMMIT_TIMEOUT_S, "first commit")
        # "The database is slow": hold its write lock, so the worker's upsert waits.
        lock = sqlite3.connect(db, timeout=5, isolation_level=None)
        lock.execute("BEGIN IMMEDIATE")
        reply = await raw.request({"type": "move", "x": 4242, "y": 7, "id": 2})
        assert reply["rev"] == 2
        await raw.ws.close()  # logout at x=4242
        # The worker fetched the batch (the filesystem broker deleted its file) and waits.
        wait_for(lambda: not any(queue.iterdir()), FETCH_TIMEOUT_S, "worker fetches batch")
        worker_log = tmp_path / "worker.log"
        wait_for(
            lambda: worker_log.read_text().count("Task gamebackend.players.flush_batch") >= 3,
            FETCH_TIMEOUT_S,
            "worker runs the batch",  # received + succeeded (warm-up), received (this one)
        )
        worker.send_signal(signal.SIGKILL)
        worker.wait()
        lock.execute("ROLLBACK")
        lock.close()
        assert row(db, "chaos1") == (1.0, 1)  # the batch is gone from the broker
        node.proc.send_signal(signal.SIGKILL)
        node.proc.wait()
        journals = list((var / "flush").glob("*.sqlite3"))
        assert journals

        node = restart_node(node)
        worker = start_worker(node.env, tmp_path / "worker2.log")
        wait_for(lambda: row(db, "chaos1") == (4242.0, 2), COMMIT_TIMEOUT_S, "replayed batch")
        # The next login reads it too, and a further change goes on from LSN 2.
        raw = await Raw.open(node.url("chaos1"))
        assert (await raw.recv())["type"] == "welcome"
        state = await raw.recv()
        assert (state["x"], state["rev"]) == (4242.0, 2)
        assert (await raw.request({"type": "move", "x": 5, "y": 5, "id": 3}))["rev"] == 3
        await raw.ws.close()
        wait_for(lambda: row(db, "chaos1") == (5.0, 3), COMMIT_TIMEOUT_S, "next commit")
        assert "flush journal: " in node.log()
    finally:
        stop(worker)
        node.stop()

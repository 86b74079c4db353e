"""Breakers in a real Celery worker process: the rule sync the first flush task starts
stops with the worker (no failed sync logged on the way out)."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from tests.gamebackend.test_celery import ROUND_TRIP_TIMEOUT_S, celery_worker
from tests.procs import child_env, manage

pytestmark = pytest.mark.slow

# An empty batch: the task runs through the worker's db.flush breaker and writes nothing.
SEND_FLUSH = """
from gamebackend.players.tasks import flush_batch
flush_batch.apply_async(args=({"id": "t1", "kind": "player", "states": []},))
"""
LOG_POLL_S = 0.1
SYNC_APPLIED = re.compile(r"flow rules v\d+ applied on worker\.")
SYNC_STOPPED = re.compile(r"flow rule sync on worker\.\S+ stopped")


def wait_for_line(path: Path, pattern: re.Pattern[str], timeout: float) -> None:
    """Until a line of the worker's log matches (the worker says what it did)."""
    deadline = time.monotonic() + timeout
    while not pattern.search(path.read_text()):
        assert time.monotonic() < deadline, path.read_text()
        time.sleep(LOG_POLL_S)  # polling the log file for the line, not a fixed wait


def test_the_rule_sync_stops_with_the_worker(tmp_path: Path) -> None:
    env = child_env(tmp_path / "var")
    manage(env, "migrate", "--noinput")
    log_path = tmp_path / "worker.log"
    with celery_worker(env, log_path) as worker:
        manage(env, "shell", "-c", SEND_FLUSH)
        wait_for_line(log_path, SYNC_APPLIED, ROUND_TRIP_TIMEOUT_S)
    log = log_path.read_text()
    assert worker.returncode == 0, log
    assert SYNC_STOPPED.search(log), log
    assert "failed" not in log, log

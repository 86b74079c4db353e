"""A task's round trip through a real Celery worker process, on both brokers."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.procs import ROOT, child_env, manage

pytestmark = pytest.mark.slow
ROUND_TRIP_TIMEOUT_S = 60
WORKER_STOP_TIMEOUT_S = 15

SEND_PING = f"""
import json
from gamebackend.health.tasks import ping
from gamebackend.health.models import WorkerHeartbeat
reply = ping.apply_async(kwargs={{"node_id": "test-node"}}).get(timeout={ROUND_TRIP_TIMEOUT_S})
beat = WorkerHeartbeat.objects.get(node_id="test-node")
print(json.dumps({{"reply": reply, "stored_worker": beat.worker}}))
"""


@contextmanager
def celery_worker(env: dict[str, str], log_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "gamebackend.celery", "worker",
             "--pool", "threads", "--concurrency", "2", "--without-gossip", "--without-mingle",
             "--loglevel", "INFO"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=WORKER_STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def round_trip(env: dict[str, str], log_path: Path) -> dict[str, object]:
    manage(env, "migrate", "--noinput")
    with celery_worker(env, log_path):
        done = manage(env, "shell", "-c", SEND_PING, check=False)
    assert done.returncode == 0, done.stderr + "\n" + log_path.read_text()
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_round_trip_on_filesystem_broker(tmp_path: Path) -> None:
    env = child_env(tmp_path / "var")
    result = round_trip(env, tmp_path / "worker.log")
    reply = result["reply"]
    assert isinstance(reply, dict)
    assert reply["node_id"] == "test-node"
    # The worker wrote the answer to the node's database, which the sender then read.
    assert result["stored_worker"] == reply["worker"]
    # The message really went through the broker folder under the var directory.
    assert (tmp_path / "var" / "broker" / "queue").is_dir()


@pytest.mark.cluster
def test_round_trip_on_redis_broker(tmp_path: Path, cluster_env: dict[str, str]) -> None:
    env = child_env(tmp_path / "var", **cluster_env)
    result = round_trip(env, tmp_path / "worker.log")
    reply = result["reply"]
    assert isinstance(reply, dict)
    assert reply["node_id"] == "test-node"
    assert result["stored_worker"] == reply["worker"]
    assert "redis://" in (tmp_path / "worker.log").read_text()

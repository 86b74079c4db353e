"""Process helpers for the durability tests: a Celery worker, a node restart in place."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from tests.nodes import NODE_START_TIMEOUT_S, Node
from tests.procs import ROOT, http_get

WORKER_STOP_TIMEOUT_S = 15
POLL_S = 0.05


def start_worker(env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    with log_path.open("ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "gamebackend.celery", "worker",
             "--pool", "threads", "--concurrency", "2", "--without-gossip", "--without-mingle",
             "--loglevel", "INFO"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=WORKER_STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def restart_node(node: Node) -> Node:
    """Start the node's server again on the same var directory, port and database."""
    with node.log_path.open("ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gamebackend.server"],
            cwd=ROOT, env=node.env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    again = Node(
        port=node.port, secret=node.secret, proc=proc, log_path=node.log_path, env=node.env
    )
    wait_for(lambda: _healthy(again), NODE_START_TIMEOUT_S, "node restart")
    return again


def _healthy(node: Node) -> bool:
    if node.proc.poll() is not None:
        raise AssertionError(f"node exited:\n{node.log()}")
    try:
        return http_get(f"{node.http_url}/healthz")[0] == 200
    except OSError:
        return False


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll an external effect (a file, a row, a port) until true, with a deadline."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout}s")
        time.sleep(POLL_S)

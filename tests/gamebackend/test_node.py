"""End to end: `make run`'s server command as a real process, in both profiles."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from tests.procs import (
    ADMIN_PASSWORD,
    NODE_STOP_TIMEOUT_S,
    console_login,
    http_get,
    process_group_alive,
    running_node,
)

pytestmark = pytest.mark.slow


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
        assert body == {
            "status": "ok",
            "checks": {
                "database": "ok",
                "channel_layer": "ok",
                "broker": "ok",
                "worker": "ok",
                "flow_rules": "ok",
            },
        }
        assert http_get(f"{base_url}/healthz")[0] == 200
        index = console_login(base_url, "operator", ADMIN_PASSWORD)
        assert "Log out" in index
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

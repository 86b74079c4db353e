"""A real 3-master Redis Cluster that a test starts itself (and tears down afterwards).

``redis-server --cluster-enabled yes`` on free ports in a temporary directory, joined with
``redis-cli --cluster create ... --cluster-replicas 0``; no persistence.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.procs import ephemeral_low, free_port
from tests.services import services_required

MASTERS = 3
# Three empty servers start and agree on the slots well within this on a busy machine.
CLUSTER_READY_TIMEOUT_S = 60.0
POLL_INTERVAL_S = 0.1


def _tools() -> tuple[str, str]:
    server, cli = shutil.which("redis-server"), shutil.which("redis-cli")
    if server is None or cli is None:
        if services_required():
            pytest.fail("redis-server/redis-cli are not installed", pytrace=False)
        pytest.skip("redis-server/redis-cli are not installed")
    return server, cli


# A cluster node also listens on its port + 10000 (the cluster bus).
BUS_PORT_OFFSET = 10_000


def _cluster_port() -> int:
    """A free port whose bus port (+10000) is free too, both below the ephemeral range
    (see ``tests.procs.free_port``)."""
    while True:
        port = free_port()
        if port + BUS_PORT_OFFSET >= ephemeral_low():
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port + BUS_PORT_OFFSET))
            except OSError:
                continue
        return port


def _cli(cli: str, port: int, *args: str) -> str:
    return subprocess.run(
        [cli, "-p", str(port), *args], capture_output=True, text=True, timeout=10, check=True
    ).stdout


@contextmanager
def running_redis_cluster(server: str | None = None, cli: str | None = None) -> Iterator[str]:
    """Start the cluster; ``redis://127.0.0.1:<port>`` of one master; torn down after."""
    server = server or shutil.which("redis-server") or "redis-server"
    cli = cli or shutil.which("redis-cli") or "redis-cli"
    directory = Path(tempfile.mkdtemp(prefix="gamebackend-rediscluster-"))
    ports = [_cluster_port() for _ in range(MASTERS)]
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for port in ports:
            workdir = directory / str(port)
            workdir.mkdir()
            procs.append(
                subprocess.Popen(
                    [server, "--port", str(port), "--bind", "127.0.0.1",
                     "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                     "--dir", str(workdir), "--save", "", "--appendonly", "no"],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                )
            )  # fmt: skip
        deadline = time.monotonic() + CLUSTER_READY_TIMEOUT_S
        for port in ports:
            while True:
                try:
                    if "PONG" in _cli(cli, port, "ping"):
                        break
                except subprocess.CalledProcessError:
                    pass
                assert time.monotonic() < deadline, f"redis-server on {port} did not start"
                time.sleep(POLL_INTERVAL_S)
        subprocess.run(
            [cli, "--cluster", "create", *(f"127.0.0.1:{port}" for port in ports),
             "--cluster-replicas", "0", "--cluster-yes"],
            capture_output=True, text=True, timeout=60, check=True,
        )  # fmt: skip
        while "cluster_state:ok" not in _cli(cli, ports[0], "cluster", "info"):
            assert time.monotonic() < deadline, "the Redis Cluster did not become ready"
            time.sleep(POLL_INTERVAL_S)
        yield f"redis://127.0.0.1:{ports[0]}"
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="module")
def redis_cluster_url() -> Iterator[str]:
    """``redis://127.0.0.1:<port>`` of one master of a fresh 3-master cluster."""
    server, cli = _tools()
    with running_redis_cluster(server, cli) as url:
        yield url

"""``make cluster`` end to end: players through nginx survive a node's SIGKILL.

Two nodes on the real PostgreSQL and Redis behind Debian's nginx (``python -m
gamebackend.cluster``, what ``make cluster`` runs). Players connect through nginx
(``ip_hash`` puts every loopback client on one node); that node's whole process group is
killed with SIGKILL; the SDK clients reconnect through nginx, which fails over to the
other node, and resume their sessions there (``resumed: true``, exactly once: sessions
live in L2, Redis, not in the dead node's memory), with their state kept.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

import gameproto as p
from gamebackend.management.nginx import find_nginx
from gameclient import Backoff, GameClient
from gameproto.tickets import mint_ticket
from tests.procs import ROOT, child_env, free_port, http_get
from tests.services import services_required

pytestmark = [pytest.mark.slow, pytest.mark.cluster]

PLAYERS = 4
CLUSTER_READY_TIMEOUT_S = 120.0
# Bounds for events the test waits for (a flush reaching the database, a reconnect).
EVENT_BOUND_S = 30.0
STOP_TIMEOUT_S = 20.0
FAST_BACKOFF = Backoff(base_s=0.05, cap_s=0.2)


@pytest.fixture
def nginx() -> str:
    found = find_nginx()
    if found is None:
        if services_required():
            pytest.fail("nginx is not installed (.ci/run installs it)", pytrace=False)
        pytest.skip("nginx is not installed")
    return found


@pytest.fixture
def cluster(
    tmp_path: Path, cluster_env: dict[str, str], nginx: str
) -> Iterator[tuple[int, Path, subprocess.Popen[bytes]]]:
    # nginx on the port, the two nodes on the next two (gamebackend.cluster's layout).
    port = free_port(count=3)
    var_dir = tmp_path / "var"
    env = child_env(var_dir, PORT=str(port), **cluster_env)
    log = (tmp_path / "cluster.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "gamebackend.cluster", "--processes", "1"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + CLUSTER_READY_TIMEOUT_S
        while True:
            assert proc.poll() is None, (tmp_path / "cluster.log").read_text()
            try:
                if http_get(f"http://127.0.0.1:{port}/readyz")[0] == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, (tmp_path / "cluster.log").read_text()
            time.sleep(0.5)
        yield port, var_dir / "cluster", proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C
            try:
                proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        log.close()


async def persisted(database_url: str, player: str, x: float) -> None:
    """Wait until the player's state with ``x`` reached the database (batched flush)."""

    def stored() -> float | None:
        with psycopg.connect(database_url) as conn:
            row = conn.execute(
                "SELECT x FROM players_player WHERE player_id = %s", (player,)
            ).fetchone()
        return None if row is None else float(row[0])

    async with asyncio.timeout(EVENT_BOUND_S):
        while await asyncio.to_thread(stored) != x:
            await asyncio.sleep(0.2)


async def test_players_fail_over_through_nginx_when_a_node_is_killed(
    cluster: tuple[int, Path, subprocess.Popen[bytes]], cluster_env: dict[str, str]
) -> None:
    port, cluster_dir, proc = cluster
    secret = cluster_env["GAME_JWT_SECRET"]
    clients: list[tuple[str, GameClient]] = []
    for i in range(PLAYERS):
        player = f"ngx{i}-{os.getpid()}"

        async def ticket(player: str = player) -> str:
            return mint_ticket(secret=secret, sub=player)

        client = GameClient(f"ws://127.0.0.1:{port}/ws/game/", ticket, backoff=FAST_BACKOFF)
        await client.connect()
        clients.append((player, client))
    nodes = {client.welcome.node for _, client in clients if client.welcome}
    assert len(nodes) == 1  # ip_hash: one client address, one node
    (dead,) = nodes
    for i, (player, client) in enumerate(clients):
        reply = await client.request(p.Move(x=10 + i, y=i))
        assert isinstance(reply, p.State)
        await persisted(cluster_env["DATABASE_URL"], player, 10.0 + i)
    # SIGKILL the whole node (its supervisor, server process and worker): no drain at all.
    name = dead.split("@")[0].removeprefix("game-")
    pgid = int((cluster_dir / f"node-{name}.pgid").read_text())
    before = [(client.session_id, client.last_seq) for _, client in clients]
    os.killpg(pgid, signal.SIGKILL)
    for i, (_, client) in enumerate(clients):
        session_id, seen = before[i]
        async with asyncio.timeout(EVENT_BOUND_S):
            while True:
                msg = await client.recv()
                if isinstance(msg, p.Welcome) and msg.node != dead:
                    break
            state = await client.recv()
        # The same session, continued on the other node: nothing replayed twice (the
        # SDK would drop a duplicate seq; here the next seq is the one after the last seen).
        assert (msg.resumed, msg.session_id) == (True, session_id)
        assert isinstance(state, p.State)
        assert state.seq == seen + 1
        assert (state.x, state.y) == (10.0 + i, float(i))  # progress kept
        reply = await client.request(p.Move(x=1, y=1))
        assert isinstance(reply, p.State)
        assert reply.seq == seen + 2
    for _, client in clients:
        await client.close()
    # Ctrl-C stops the rest of the cluster cleanly.
    os.killpg(proc.pid, signal.SIGINT)
    assert proc.wait(timeout=STOP_TIMEOUT_S) == 0

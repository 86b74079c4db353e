"""``runnode`` with several server processes on one port (cluster profile, SO_REUSEPORT)."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

import pytest

from gameproto.tickets import mint_ticket
from tests.gateway.wsclient import Raw
from tests.nodes import TEST_CONNECT_RULE
from tests.procs import NODE_STOP_TIMEOUT_S, child_env, http_get, manage, running_node

pytestmark = pytest.mark.slow

PLAYERS = 16
# Each new connection lands on either process (the kernel hashes the source port); this
# many tries all landing on one process has odds of 2^-40.
TAKEOVER_TRIES = 40
# Each process samples its metrics every 5 s.
METRICS_BOUND_S = 20.0


async def open_player(ws_url: str, secret: str, player: str) -> tuple[Raw, dict, dict]:
    raw = await Raw.open(f"{ws_url}?ticket={mint_ticket(secret=secret, sub=player)}")
    welcome = await raw.recv()
    state = await raw.recv()
    return raw, welcome, state


@pytest.mark.cluster
async def test_two_processes_share_the_port_hand_players_over_and_drain(
    tmp_path: Path, cluster_env: dict[str, str]
) -> None:
    var_dir = tmp_path / "var"
    var_dir.mkdir()
    env = child_env(var_dir, **cluster_env)
    manage(env, "migrate", "--noinput")
    manage(env, "flowrule", *TEST_CONNECT_RULE)
    secret = cluster_env["GAME_JWT_SECRET"]
    with running_node(var_dir, **cluster_env) as (base_url, proc):
        port = base_url.rsplit(":", 1)[1]
        ws_url = f"ws://127.0.0.1:{port}/ws/game/"
        # One process per core by default with REDIS_URL: each its own node id.
        opened = [await open_player(ws_url, secret, f"mp{i}") for i in range(PLAYERS)]
        nodes = {welcome["node"] for _, welcome, _ in opened}
        assert nodes == {f"game.p0@127.0.0.1:{port}", f"game.p1@127.0.0.1:{port}"}
        # /metrics adds up every process (Prometheus multi-process mode).
        async with asyncio.timeout(METRICS_BOUND_S):
            while http_get(f"{base_url}/metrics")[1].count(f"game_connections {PLAYERS}.0") != 1:
                await asyncio.sleep(0.5)
        # A player who reconnects to the other process is taken over through the remote
        # path (as between nodes): the old socket gets 4409 and the state moves along.
        first, welcome, _ = opened[0]
        await first.request({"type": "move", "x": 7, "y": 8, "id": 1})
        holder, taken = first, None
        for _ in range(TAKEOVER_TRIES):
            raw, again, state = await open_player(ws_url, secret, "mp0")
            assert await holder.closed_with() == 4409
            assert (state["x"], state["y"]) == (7.0, 8.0)
            holder = raw
            if again["node"] != welcome["node"]:
                taken = again
                break
        assert taken is not None, "every reconnect landed on the same process"
        others = [raw for raw, _, _ in opened[1:]] + [holder]
        # SIGTERM drains every process: each socket closed with 1001, then exit 0.
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        codes = [await raw.closed_with() for raw in others]
        assert set(codes) == {1001}
        proc.wait(timeout=NODE_STOP_TIMEOUT_S)
        assert proc.returncode == 0
        assert time.monotonic() - started < NODE_STOP_TIMEOUT_S


def test_more_than_one_process_needs_redis(tmp_path: Path) -> None:
    env = child_env(tmp_path / "var")
    result = manage(env, "runnode", "--processes", "2", "--skip-setup", check=False)
    assert result.returncode != 0
    assert "needs REDIS_URL" in result.stderr

"""``loadbots`` against a real Daphne node: connects, answers, latency, source spreading."""

from __future__ import annotations

import asyncio
import io
import re
import shlex
import subprocess
import sys
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from gamebackend.loadtest.bots import Config, Engine
from gamebackend.loadtest.cli import run_load
from tests.nodes import Node, NodeFactory
from tests.procs import ROOT, free_port

pytestmark = pytest.mark.slow

PLAYERS = 20
RATE = 5.0
DURATION_S = 2.0
# Connecting 20 bots and a 2 s window take a few seconds; this bounds a hung run.
RUN_TIMEOUT_S = 60.0
# The README's command: 50 players for 10 s (connecting paced by the per-IP limit).
README_RUN_TIMEOUT_S = 120.0
SS_TIMEOUT_S = 10.0
_PEER = re.compile(r"(127\.\d+\.\d+\.\d+):\d+")


def established_peers(port: int) -> set[str]:
    """Source addresses of the connections the node holds on ``port`` (server side)."""
    out = subprocess.run(
        ["ss", "-Htn", "state", "established", f"( sport = :{port} )"],
        capture_output=True,
        text=True,
        check=True,
        timeout=SS_TIMEOUT_S,
    ).stdout
    peers = set()
    for line in out.splitlines():
        addresses = _PEER.findall(line)
        if len(addresses) == 2:
            peers.add(addresses[1])  # local address first, then the peer
    return peers


async def test_bots_connect_get_answers_and_spread_sources(node: Node) -> None:
    config = Config(
        url=node.ws_url,
        players=PLAYERS,
        rate=RATE,
        duration_s=DURATION_S,
        spread_sources=True,
        jwt_secret=node.secret,
    )
    out = io.StringIO()
    engine = Engine(config, out=out)
    run = asyncio.ensure_future(engine.run())  # owned by this test (awaited below)
    try:
        await asyncio.wait_for(engine.window_started.wait(), RUN_TIMEOUT_S)
        peers = await asyncio.to_thread(established_peers, node.port)
        summary = await asyncio.wait_for(run, RUN_TIMEOUT_S)
    finally:
        run.cancel()
    assert summary["connected"] == PLAYERS
    assert summary["peak_held"] == PLAYERS
    assert summary["connect_failures"] == {}
    assert summary["closes"] == {}
    assert summary["errors"] == {}
    # Open loop: every bot sends RATE/s from a random phase, so ~RATE * DURATION each.
    assert summary["requests"] >= PLAYERS * RATE * DURATION_S * 0.8
    assert summary["answered"] == summary["requests"]
    assert summary["unanswered"] == 0
    latency = summary["latency_ms"]
    assert latency["count"] == summary["answered"]
    assert 0 < latency["p50"] <= latency["p99"] <= latency["max"]
    # Acks (mostly piggybacked on requests) kept the small outbox (64) from overflowing:
    # no close at all (checked above). Sending bots need no heartbeat ping (any frame is
    # liveness); the idle case is covered by the heartbeat tests.
    assert summary["acks_sent"] > 0
    # Source spreading, seen from both ends.
    assert summary["source_addresses"] == PLAYERS
    assert len(peers) == PLAYERS
    assert "127.0.0.1" not in peers
    assert "held 20/20" in out.getvalue()


async def test_guest_api_is_used_without_a_secret(
    node: Node, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GAME_JWT_SECRET", raising=False)
    config = Config(url=node.ws_url, players=3, rate=2.0, duration_s=0.5, codec="msgpack")
    summary = await asyncio.wait_for(run_load(config, None, as_json=False), RUN_TIMEOUT_S)
    assert summary["connected"] == 3
    assert summary["answered"] == summary["requests"]


def test_command_prints_progress_and_summary(node: Node) -> None:
    out = io.StringIO()
    call_command(
        "loadbots",
        "--players=4",
        "--rate=4",
        "--duration=1.2",
        f"--url={node.ws_url}",
        f"--jwt-secret={node.secret}",
        stdout=out,
    )
    text = out.getvalue()
    assert "loadbots: 4 players, 4 req/s each" in text
    assert re.search(r"\[\s*\d+\.\ds\] held \d+/4", text)  # a progress line
    assert "connections: held 4 of 4" in text
    assert "latency: p50" in text
    assert "connect failures: none" in text


def test_command_fails_when_every_connection_fails() -> None:
    out = io.StringIO()
    with pytest.raises(CommandError, match="every connection failed") as failed:
        call_command(
            "loadbots",
            "--players=3",
            "--duration=0",
            f"--url=ws://127.0.0.1:{free_port()}/ws/game/",
            "--jwt-secret=unused-but-long-enough-for-hs256-0123456789",
            stdout=out,
        )
    assert failed.value.returncode == 1
    assert "ConnectionRefusedError x3" in out.getvalue()


def readme_loadbots_command(port: int) -> list[str]:
    """The load-test command exactly as README.md gives it, aimed at ``port``."""
    readme = (ROOT / "README.md").read_text()
    match = re.search(r"`(python manage\.py loadbots [^`]+)`", readme)
    assert match, "README.md has no loadbots command"
    command = match.group(1).replace("127.0.0.1:8000", f"127.0.0.1:{port}")
    assert f"--url ws://127.0.0.1:{port}/ws/game/" in command
    words = shlex.split(command)
    return [sys.executable, *words[1:]]


def test_readme_command_holds_every_player_on_a_fresh_node(node_factory: NodeFactory) -> None:
    """Issue 12: on a fresh single machine it held 22 of 50 (the guest API's per-IP 429s,
    then, with the secret, the per-IP connect limit's 4429s)."""
    node = node_factory(rules=[], generated_secret=True)  # the shipped limits
    env = {k: v for k, v in node.env.items() if k != "GAME_JWT_SECRET"}
    done = subprocess.run(
        readme_loadbots_command(node.port),
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=README_RUN_TIMEOUT_S,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "connections: held 50 of 50 at the end (peak 50, 50 connected)" in out
    assert "connect failures: none" in out
    assert "tickets: minted with this node's own secret" in out
    # The shipped ws.connect limit (burst 20) was met and waited out, not failed.
    assert re.search(r"connect retries .*: rate_limited \(ws\.connect\) x\d+", out), out
    assert "closes: none" in out
    assert "unanswered 0" in out


async def test_rate_limited_connects_are_retried_or_reported_by_cause(
    node_factory: NodeFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GAME_JWT_SECRET", raising=False)
    node = await asyncio.to_thread(
        node_factory,
        rules=[
            ("ws.connect", "--scope", "ip", "--rate", "2", "--burst", "2"),
            ("http.auth.guest", "--scope", "ip", "--rate", "2", "--burst", "2"),
        ],
    )

    async def run(players: int, **options: Any) -> dict[str, Any]:
        config = Config(url=node.ws_url, players=players, rate=0.0, duration_s=0.0, **options)
        return await asyncio.wait_for(run_load(config, None, as_json=False), RUN_TIMEOUT_S)

    # No retries: what the server refused is counted under its own name.
    summary = await run(6, jwt_secret=node.secret, connect_retry_s=0.0)
    failures = summary["connect_failures"]
    assert set(failures) == {"rate_limited (ws.connect)"}, failures
    assert 2 <= summary["connected"] < 6
    assert summary["connected"] + failures["rate_limited (ws.connect)"] == 6
    # With retries (the default), every bot gets in after the server's retry_after_ms.
    summary = await run(6, jwt_secret=node.secret)
    assert (summary["connected"], summary["connect_failures"]) == (6, {})
    assert summary["connect_retries"]["rate_limited (ws.connect)"] >= 1

    # The same for the guest API (spread sources: the connect limit is per IP, the guest
    # API sees every bot at 127.0.0.1).
    summary = await run(6, spread_sources=True, connect_retry_s=0.0)
    failures = summary["connect_failures"]
    assert set(failures) == {"rate_limited (http.auth.guest)"}, failures
    summary = await run(6, spread_sources=True)
    assert (summary["connected"], summary["connect_failures"]) == (6, {})
    assert summary["connect_retries"]["rate_limited (http.auth.guest)"] >= 1


async def test_guest_api_errors_are_named(
    node_factory: NodeFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GAME_JWT_SECRET", raising=False)
    node = await asyncio.to_thread(node_factory, rules=[], GAME_ALLOW_GUESTS="0")
    config = Config(url=node.ws_url, players=2, duration_s=0.0)
    summary = await asyncio.wait_for(run_load(config, None, as_json=False), RUN_TIMEOUT_S)
    assert summary["connect_failures"] == {"guest_api_http_404 (not_found)": 2}
    # Nobody listening at all:
    config = Config(url=f"ws://127.0.0.1:{free_port()}/ws/game/", players=2, duration_s=0.0)
    summary = await asyncio.wait_for(run_load(config, None, as_json=False), RUN_TIMEOUT_S)
    assert summary["connect_failures"] == {"guest_api_unreachable (ConnectionRefusedError)": 2}


async def test_connections_over_the_per_address_cap_fail_at_once_by_name(
    node_factory: NodeFactory,
) -> None:
    # The cap does not free up while the bots hold their connections: no retries.
    node = await asyncio.to_thread(node_factory, GAME_MAX_CONNS_PER_IP="3")
    config = Config(url=node.ws_url, players=5, rate=0.0, duration_s=0.0, jwt_secret=node.secret)
    summary = await asyncio.wait_for(run_load(config, None, as_json=False), RUN_TIMEOUT_S)
    assert summary["connected"] == 3
    assert summary["connect_failures"] == {"too_many_connections": 2}
    assert summary["connect_retries"] == {}

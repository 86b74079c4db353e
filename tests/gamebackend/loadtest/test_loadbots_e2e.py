"""``loadbots`` against a real Daphne node: connects, answers, latency, source spreading."""

from __future__ import annotations

import asyncio
import io
import re
import subprocess

import pytest
from django.core.management import CommandError, call_command

from gamebackend.loadtest.bots import Config, Engine
from gamebackend.loadtest.cli import run_load
from tests.nodes import Node
from tests.procs import free_port

pytestmark = pytest.mark.slow

PLAYERS = 20
RATE = 5.0
DURATION_S = 2.0
# Connecting 20 bots and a 2 s window take a few seconds; this bounds a hung run.
RUN_TIMEOUT_S = 60.0
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

"""``/metrics`` against a real node: Prometheus text, for this host or staff only."""

from __future__ import annotations

import asyncio
import re
import urllib.error
import urllib.request

import pytest

from tests.gamebackend.rooms.players import Player, new_id
from tests.gateway.wsclient import Raw
from tests.nodes import Node

pytestmark = pytest.mark.slow

# The sampler copies counts into the metrics every 5 s; a bound for seeing them.
SAMPLE_BOUND_S = 20.0


def fetch(url: str, **headers: str) -> tuple[int, str]:
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=5) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def value(text: str, sample: str) -> float | None:
    match = re.search(rf"^{re.escape(sample)} ([0-9.e+]+)$", text, re.MULTILINE)
    return float(match.group(1)) if match else None


async def metrics_when(node: Node, ready: object) -> str:
    async with asyncio.timeout(SAMPLE_BOUND_S):
        while True:
            status, text = await asyncio.to_thread(fetch, f"{node.http_url}/metrics")
            assert status == 200
            if ready(text):  # type: ignore[operator]
                return text
            await asyncio.sleep(0.5)


async def test_metrics_count_messages_requests_and_connections(node: Node) -> None:
    raw = await Raw.open(node.url("metrics-player"))
    await raw.recv()
    await raw.recv()
    for i in range(5):
        await raw.request({"type": "move", "x": i, "y": i, "id": i})
    text = await metrics_when(
        node, lambda t: (value(t, 'game_messages_in_total{type="move"}') or 0) >= 5
    )
    assert (value(text, 'game_messages_out_total{type="state"}') or 0) >= 6
    assert (value(text, 'game_request_seconds_count{type="move"}') or 0) >= 5
    assert value(text, "game_connections") is not None
    assert 'game_breaker_state{breaker="celery.enqueue"} 0.0' in text
    assert 'game_rate_limit_decisions_total{decision="allowed",resource="ws.move"' in text
    await raw.close()


def test_metrics_are_refused_to_requests_relayed_by_a_proxy(node: Node) -> None:
    status, body = fetch(f"{node.http_url}/metrics", **{"X-Forwarded-For": "203.0.113.9"})
    assert status == 403
    assert "forbidden" in body


async def test_metrics_count_rooms_members_ticks_and_tick_jitter(node: Node) -> None:
    room = new_id("metrics-room")
    amy = await Player.connect(node, "amy-" + room)
    joined = await amy.join(room, tick_rate=20)
    # An input for a tick already closed is late: counted, and shifted to the next tick.
    await amy.frame(room, joined["tick"] + 2)
    await amy.send({"type": "input", "room": room, "tick": joined["tick"], "keys": 1})

    done = asyncio.Event()

    async def keep_reading() -> None:
        # Reading acks the frames, which keeps amy alive past the node's short heartbeat.
        # It stops on its own (Python 3.11's wait_for can swallow a cancellation that
        # races with a frame arriving, so cancelling it alone could leave it looping).
        while not done.is_set():
            await amy.recv()

    async with asyncio.TaskGroup() as group:
        group.create_task(keep_reading())
        try:
            text = await metrics_when(
                node,
                lambda t: (
                    (value(t, 'game_room_events_total{event="late_inputs"}') or 0) >= 1
                    and (value(t, "game_room_members") or 0) >= 1
                ),
            )
        finally:
            done.set()
    assert (value(text, "game_rooms") or 0) >= 1
    assert (value(text, 'game_room_events_total{event="ticks"}') or 0) >= 3
    assert (value(text, "game_room_tick_jitter_seconds_count") or 0) >= 3
    await amy.raw.close()

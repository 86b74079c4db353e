"""The JavaScript SDK against a real node, in one battle with a Python SDK player.

The JS player (node, `js/e2e_client.mjs`) logs in with a device id, joins the demo room the
Python player created, sends an input per frame, loses its connection midway and comes
back through the SDK's reconnect (a refreshed ticket, `resume`). Both report digests every
5 ticks, which the server checks against its own simulation. At the end both languages
hold the same state, and the JS player got every frame exactly once, in order.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path

import pytest

from gameclient import DEMO, Backoff, GameClient, Room, RoomCreate, TicketSource
from gameproto.sims import DemoState
from tests.nodes import Node
from tests.services import require_node

pytestmark = pytest.mark.slow

JS_PLAYER = Path(__file__).resolve().parent / "js" / "e2e_client.mjs"
FAST_BACKOFF = Backoff(base_s=0.01, cap_s=0.05)
FRAMES = 90  # 3 s at 30 Hz
PLAY_TIMEOUT_S = 30.0
RIGHT, DOWN = 8, 2


async def play(client: GameClient, room: Room[DemoState], keys: int, until_tick: int) -> None:
    """Feed the room every push; send an input per frame received, until ``until_tick``."""
    while room.next_tick <= until_tick:
        msg = await client.recv()
        before = room.next_tick
        if await room.handle(msg) and before < room.next_tick <= until_tick:
            await room.send_input(keys)


async def test_a_javascript_and_a_python_player_share_a_battle(node: Node) -> None:
    node_bin = require_node()
    room_id = f"js-{uuid.uuid4().hex[:8]}"
    tickets = TicketSource.device(node.http_url, f"py-device-{uuid.uuid4().hex}")
    async with GameClient(node.ws_url, tickets, backoff=FAST_BACKOFF) as py:
        room: Room[DemoState] = Room(py, room_id, sim=DEMO, hash_every=5)
        joined = await room.join(RoomCreate(sim="demo", tick_rate=30, input_delay=1))
        until = joined.tick + FRAMES
        args = {
            "http": node.http_url,
            "ws": node.ws_url,
            "room": room_id,
            "until": until,
            "dropAt": joined.tick + FRAMES // 2,
            "keys": DOWN,
        }
        js = await asyncio.create_subprocess_exec(
            node_bin,
            "--experimental-websocket",
            "--no-warnings",
            str(JS_PLAYER),
            json.dumps(args),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            await asyncio.wait_for(play(py, room, RIGHT, until), PLAY_TIMEOUT_S)
            out, err = await asyncio.wait_for(js.communicate(), PLAY_TIMEOUT_S)
        finally:
            if js.returncode is None:
                js.kill()
                await js.wait()
    assert js.returncode == 0, err.decode()
    result = json.loads(out.decode().splitlines()[-1])

    # Every frame from its join on reached the JS player exactly once, in order, across
    # the dropped connection: it resumed the same session with a refreshed ticket.
    assert result["ticks"] == list(range(result["joinedTick"], until + 1))
    first, second = result["welcomes"]
    assert (first["resumed"], second["resumed"]) == (False, True)
    assert first["session"] == second["session"]
    assert result["refreshTokens"] == 2  # the login's token, then the refresh's

    # Both languages simulated the same frames to the same state and digest.
    assert room.state is not None
    assert result["nextTick"] == room.next_tick == until + 1
    assert result["state"] == DEMO.to_data(room.state)
    assert int(result["digest"]) == DEMO.digest(room.state)
    js_player = result["player"]
    assert js_player in room.state.players
    assert py.welcome is not None
    assert py.welcome.player_id in room.state.players
    # The JS player's inputs reached the frames (and so everybody's simulation).
    assert any((js_player, DOWN) in [tuple(e) for e in f.inputs] for f in room.frames)

    # The server compared both players' digests with its own simulation: no desync.
    assert result["hashesSent"] > 0
    assert room.hashes_sent > 0
    assert result["desyncs"] == 0
    assert room.desyncs == []

"""A battle's replay log goes through the real Celery worker into the database, and
``manage.py replay --verify`` re-runs it to the digests the players computed."""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from pathlib import Path
from typing import Any

import pytest

from gameproto.sims import DEMO
from gameproto.tickets import mint_ticket
from tests.gateway.wsclient import Raw
from tests.procs import child_env, manage, running_node

pytestmark = pytest.mark.slow

# The replay reaches the database within a flush interval or two plus the worker's pickup.
PERSIST_TIMEOUT_S = 30.0
POLL_S = 0.5
TICKS = 40


async def play(base_url: str, secret: str, room: str) -> dict[str, list[dict[str, Any]]]:
    ws_url = base_url.replace("http://", "ws://") + "/ws/game/"
    frames: dict[str, list[dict[str, Any]]] = {}
    raws = {}
    for player in ("amy", "bob"):
        raw = await Raw.open(f"{ws_url}?ticket={mint_ticket(secret=secret, sub=player)}")
        await raw.recv()
        await raw.recv()
        raws[player] = raw
        frames[player] = []
        await raw.send(
            {"type": "join", "room": room, "id": 1, "create": {"sim": "demo", "tick_rate": 30}}
        )
    start = 0
    for raw in raws.values():
        while True:
            msg = await raw.recv()
            if msg.get("re") == 1:
                start = max(start, msg["tick"])
                break
    for offset in range(TICKS):
        for i, raw in enumerate(raws.values()):
            await raw.send(
                {
                    "type": "input",
                    "room": room,
                    "tick": start + offset,
                    "keys": (offset + i * 5) % 16,
                }
            )
    for player, raw in raws.items():
        while not frames[player] or frames[player][-1]["tick"] < start + TICKS:
            msg = await raw.recv()
            if msg["type"] == "frame":
                frames[player].append(msg)
                await raw.send({"type": "ack", "seq": msg["seq"]})
        await raw.close(1000)  # the session ends: the player leaves the room
    return frames


def test_a_battle_is_persisted_and_replays_to_the_same_digests(tmp_path: Path) -> None:
    secret = secrets.token_urlsafe(32)
    room = f"replay-{secrets.token_hex(4)}"
    with running_node(tmp_path / "var", GAME_JWT_SECRET=secret, GAME_ROOM_IDLE_S="0.2") as (url, _):
        frames = asyncio.run(play(url, secret, room))
        env = child_env(tmp_path / "var", GAME_JWT_SECRET=secret)
        deadline = time.monotonic() + PERSIST_TIMEOUT_S
        while True:
            done = manage(env, "replay", room, "--jsonl", check=False)
            lines = [json.loads(line) for line in done.stdout.splitlines()]
            # The room idles out after both left; its last chunk marks the battle ended.
            if lines and lines[0]["ended_at"] is not None:
                break
            assert time.monotonic() < deadline, done.stderr
            time.sleep(POLL_S)  # polling another process's database: no event to await
        verify = manage(env, "replay", room, "--verify", "--quiet")
    header, logged = lines[0], lines[1:]
    assert (header["room"], header["sim"], header["tick_rate"]) == (room, "demo", 30)
    assert [f["tick"] for f in logged] == list(range(len(logged)))
    # Every frame both players got is in the log, identically.
    by_tick = {f["tick"]: f["inputs"] for f in logged}
    for player_frames in frames.values():
        for frame in player_frames:
            assert by_tick[frame["tick"]] == frame["inputs"]
    state = DEMO.initial()
    expected = []
    for f in logged:
        state = DEMO.step(state, f["tick"], f["inputs"])
        if (f["tick"] + 1) % 100 == 0:
            expected.append(f"verify: tick {f['tick']} digest {DEMO.digest(state)}")
    out = verify.stdout.splitlines()
    assert [line for line in out if line.startswith("verify: tick")] == expected
    assert f"tick {logged[-1]['tick']} digest {DEMO.digest(state)}" in verify.stdout
    assert "the replay log is complete" in verify.stdout

"""A live sim room on a real node gets periodic snapshots (entity kind ``room``) with an
increasing LSN, through the node's snapshotter and the real Celery worker into the
database (single-machine profile: ``runnode`` supervises the worker)."""

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

# Short, so a few periods pass while the test plays; the default is 60 s.
SNAPSHOT_EVERY_S = "0.5"
# Snapshots reach the database within a period, the snapshotter's send interval (1 s) and
# the worker's pickup; generous for a loaded machine.
SNAPSHOT_TIMEOUT_S = 40.0
POLL_S = 0.5

ROWS = """
import json
from gamebackend.snapshots.models import Snapshot
rows = Snapshot.objects.filter(entity_kind="room", entity_id=%r).order_by("id")
print("ROWS " + json.dumps([[s.lsn, s.reason, s.payload] for s in rows]))
"""


def room_snapshots(env: dict[str, str], room: str) -> list[list[Any]]:
    out = manage(env, "shell", "-c", ROWS % room, check=False).stdout
    for line in out.splitlines():
        if line.startswith("ROWS "):
            rows: list[list[Any]] = json.loads(line[5:])
            return rows
    return []


async def test_a_live_sim_room_gets_periodic_snapshots_with_increasing_lsn(tmp_path: Path) -> None:
    secret = secrets.token_urlsafe(32)
    room = f"snap-{secrets.token_hex(4)}"
    var = tmp_path / "var"
    with running_node(var, GAME_JWT_SECRET=secret, GAME_SNAPSHOT_EVERY_S=SNAPSHOT_EVERY_S) as (
        url,
        _,
    ):
        env = child_env(var, GAME_JWT_SECRET=secret)
        ws_url = url.replace("http://", "ws://") + "/ws/game/"
        raw = await Raw.open(f"{ws_url}?ticket={mint_ticket(secret=secret, sub='amy')}")
        await raw.recv()
        await raw.recv()
        await raw.send({"type": "join", "room": room, "id": 1, "create": {"sim": "demo"}})
        while (msg := await raw.recv()).get("re") != 1:
            pass
        await raw.send({"type": "input", "room": room, "tick": msg["tick"] + 2, "keys": 8})
        deadline = time.monotonic() + SNAPSHOT_TIMEOUT_S
        rows: list[list[Any]] = []
        while True:
            # In a thread: the room stays live (and the socket read) while we poll.
            rows = await asyncio.to_thread(room_snapshots, env, room)
            if len([r for r in rows if r[1] == "periodic"]) >= 2:
                break
            assert time.monotonic() < deadline, f"room snapshots so far: {rows}"
            await asyncio.sleep(POLL_S)  # polling another process's database
        await raw.close(1000)
    periodic = [r for r in rows if r[1] == "periodic"]
    lsns = [r[0] for r in periodic]
    assert lsns == sorted(set(lsns)), lsns  # strictly increasing
    for lsn, _, payload in periodic:
        assert (payload["room"], payload["sim"], payload["lsn"], payload["tick"]) == (
            room,
            "demo",
            lsn,
            lsn,
        )
        state = DEMO.from_data(payload["state"])
        assert payload["digest"] == DEMO.digest(state)
    # By the second snapshot the player's input was stepped: amy is on the grid.
    assert "amy" in periodic[-1][2]["state"]["players"]

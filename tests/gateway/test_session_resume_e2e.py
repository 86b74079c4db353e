"""Sessions outlive the node's process (single-machine profile: L2 is a SQLite file)."""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from pathlib import Path
from typing import Any

import pytest

from gamebackend.gateway.sessionstore import decode_record
from tests.gateway.wsclient import Raw
from tests.nodes import Node, NodeFactory, restart_node

pytestmark = pytest.mark.slow

# Bounds the wait for the node's batched L2 write (every GAME_SESSION_FLUSH_MS) to land.
EVENT_BOUND_S = 10.0
MOVES = 5


def new_player() -> str:
    return f"r{uuid.uuid4().hex[:12]}"


async def open_session(node: Node, player: str, **query: object) -> tuple[Raw, dict[str, Any]]:
    raw = await Raw.open(node.url(player, **query))
    welcome = await raw.recv()
    assert welcome["type"] == "welcome"
    return raw, welcome


def stored_last_seq(var_dir: Path, session_id: str) -> int | None:
    path = var_dir / "sessions.sqlite3"
    if not path.exists():
        return None  # before the node's first batch
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        try:
            row = db.execute(
                "SELECT data FROM session WHERE session_id = ?", (session_id,)
            ).fetchone()
        except sqlite3.OperationalError:  # the node is creating the table right now
            row = None
    db.close()
    return None if row is None else decode_record(bytes(row[0])).last_seq


async def played(node: Node, player: str) -> tuple[str, list[dict[str, Any]]]:
    """A session with the initial state and MOVES answered moves, none acknowledged."""
    raw, welcome = await open_session(node, player)
    got = [await raw.recv()]
    for i in range(1, MOVES + 1):
        got.append(await raw.request({"type": "move", "x": i, "y": 0, "id": i}))
    assert [m["seq"] for m in got] == list(range(1, MOVES + 2))
    raw.ws.transport.abort()
    return welcome["session_id"], got


async def resume_and_check(
    node: Node, player: str, session_id: str, got: list[dict[str, Any]], seen: int
) -> None:
    """Resume as a client that saw up to seq ``seen``: the rest comes once, in order."""
    raw, welcome = await open_session(node, player, resume=session_id, last_seq=seen)
    assert (welcome["resumed"], welcome["session_id"]) == (True, session_id)
    assert (welcome["last_seq"], welcome["restored"]) == (MOVES + 1, True)
    replayed = [await raw.recv() for _ in range(MOVES + 1 - seen)]
    assert replayed == got[seen:]  # the very messages, with their original seqs
    # The node's new actor sends its current state once, numbered after the replay (what
    # the state is depends on the player-state flush path, not on the session store: these
    # nodes run no Celery worker).
    fresh = await raw.recv()
    assert (fresh["type"], fresh["seq"], fresh.get("re")) == ("state", MOVES + 2, None)
    reply = await raw.request({"type": "move", "x": 42, "y": 1, "id": "after"})
    assert (reply["seq"], reply["x"]) == (MOVES + 3, 42.0)
    await raw.close()


async def test_a_session_resumes_after_the_node_restarts(node_factory: NodeFactory) -> None:
    node = node_factory()
    player = new_player()
    session_id, got = await played(node, player)
    assert node.stop() == 0  # the drain writes every session to L2
    restart_node(node)
    await resume_and_check(node, player, session_id, got, seen=2)


async def test_a_session_resumes_after_the_node_is_killed(node_factory: NodeFactory) -> None:
    node = node_factory()
    player = new_player()
    session_id, got = await played(node, player)
    var_dir = node.log_path.parent
    async with asyncio.timeout(EVENT_BOUND_S):
        while await asyncio.to_thread(stored_last_seq, var_dir, session_id) != MOVES + 1:
            await asyncio.sleep(0.02)
    node.kill()
    restart_node(node)
    await resume_and_check(node, player, session_id, got, seen=3)


async def test_an_ended_session_does_not_come_back_after_a_restart(
    node_factory: NodeFactory,
) -> None:
    node = node_factory()
    player = new_player()
    raw, welcome = await open_session(node, player)
    await raw.recv()
    await raw.close(1000)  # the client ends the session
    assert node.stop() == 0
    restart_node(node)
    raw2, welcome2 = await open_session(node, player, resume=welcome["session_id"], last_seq=1)
    assert welcome2["resumed"] is False
    await raw2.close()

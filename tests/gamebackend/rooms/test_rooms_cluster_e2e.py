"""Rooms across two cluster nodes on the real PostgreSQL and Redis.

A room lives on one node; members connected to the other node join through remote actor
delivery and get every frame through their own node. When the room's node dies, its lease
expires and the next join re-creates the room on a live node from the replay log.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import psycopg
import pytest
import redis

from gameproto.sims import DEMO
from tests.gamebackend.rooms.players import Player, new_id
from tests.gamebackend.test_celery import celery_worker
from tests.nodes import NodeFactory
from tests.procs import child_env

pytestmark = [pytest.mark.slow, pytest.mark.cluster]

LEASE_S = "1"
WAIT_S = 30.0
POLL_S = 0.2


async def test_members_on_another_node_join_and_play_through_remote_delivery(
    cluster_env: dict[str, str], node_factory: NodeFactory
) -> None:
    node_a = node_factory(GAME_ROOM_LEASE_S=LEASE_S, **cluster_env)
    node_b = node_factory(secret=node_a.secret, GAME_ROOM_LEASE_S=LEASE_S, **cluster_env)
    room = new_id("r")
    host = await Player.connect(node_a)
    remote = [await Player.connect(node_b) for _ in range(2)]
    assert remote[0].welcome["node"].endswith(f":{node_b.port}")
    await host.join(room, sim="demo")
    joins = [await p.join(room) for p in remote]
    assert joins[1]["members"] == [host.player_id, remote[0].player_id, remote[1].player_id]
    announced = [await host.until(lambda m: m["type"] == "member_joined") for _ in remote]
    assert [m["player_id"] for m in announced] == [p.player_id for p in remote]
    target = joins[1]["tick"] + 4
    await remote[0].send({"type": "input", "room": room, "tick": target, "keys": 8})
    await remote[1].send({"type": "input", "room": room, "tick": target, "keys": 2})
    await host.send({"type": "input", "room": room, "tick": target, "keys": 0})
    frames = [await p.frame(room, target) for p in (host, *remote)]
    expected = sorted([[host.player_id, 0], [remote[0].player_id, 8], [remote[1].player_id, 2]])
    assert all(f["tick"] == target and f["inputs"] == expected for f in frames)
    for player in remote:
        ticks = [f["tick"] for f in player.frames(room)]
        assert ticks == list(range(ticks[0], ticks[-1] + 1))  # every tick, once, in order
    # Errors and chat come back across nodes too.
    chat = await remote[0].request({"type": "chat", "room": room, "text": "hello"})
    assert chat["player_id"] == remote[0].player_id
    heard = await host.until(lambda m: m["type"] == "chat")
    assert heard["text"] == "hello"
    bad = await remote[1].request({"type": "input", "room": room, "tick": 10**9, "keys": 1})
    assert (bad["code"], bad["field"]) == ("invalid", "tick")
    # A member whose session ends on the other node leaves the room.
    await remote[1].close(1000)
    left = await host.until(lambda m: m["type"] == "member_left")
    assert left["player_id"] == remote[1].player_id
    await host.close()
    await remote[0].close()


def persisted_last_tick(database_url: str, room: str) -> int:
    """The last tick of the room's battle in the database (-1: nothing yet)."""
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT max(last_tick) FROM rooms_battle WHERE room_id = %s", (room,)
        ).fetchone()
    return -1 if row is None or row[0] is None else int(row[0])


async def test_a_dead_nodes_room_is_recreated_from_its_replay_log(
    cluster_env: dict[str, str], node_factory: NodeFactory, redis_url: str, tmp_path: Path
) -> None:
    node_a = node_factory(GAME_ROOM_LEASE_S=LEASE_S, **cluster_env)
    node_b = node_factory(secret=node_a.secret, GAME_ROOM_LEASE_S=LEASE_S, **cluster_env)
    env = child_env(tmp_path / "worker", **cluster_env)
    room = new_id("r")
    with celery_worker(env, tmp_path / "worker.log"):
        host = await Player.connect(node_a)
        survivor = await Player.connect(node_b)
        await host.join(room, sim="demo", tick_rate=20)
        first = await survivor.join(room)
        state = DEMO.from_data(first["state"]["data"])
        for i in range(10):
            await survivor.send(
                {"type": "input", "room": room, "tick": first["tick"] + 2 + i, "keys": 8}
            )
            await host.send(
                {"type": "input", "room": room, "tick": first["tick"] + 2 + i, "keys": 2}
            )
        await survivor.frame(room, first["tick"] + 12)
        # Wait until the log is persisted past the inputs (chunks flush every second).
        deadline = time.monotonic() + WAIT_S
        while persisted_last_tick(cluster_env["DATABASE_URL"], room) < first["tick"] + 12:
            assert time.monotonic() < deadline, "the replay log did not reach the database"
            await asyncio.sleep(POLL_S)  # another process's database: no event to await
        node_a.proc.kill()  # no shutdown, no release: the lease has to expire
        node_a.proc.wait()
        client = redis.Redis.from_url(redis_url)
        deadline = time.monotonic() + WAIT_S
        while client.get(f"game:room:node:{room}") is not None:
            assert time.monotonic() < deadline, "the dead node's lease did not expire"
            await asyncio.sleep(POLL_S)
        client.close()
        again = await survivor.join(room)
    # Re-created here, continuing the battle where its log ends (not at tick 0).
    assert again["tick"] >= first["tick"] + 13
    assert again["members"] == [survivor.player_id]
    received = {f["tick"]: f["inputs"] for f in survivor.frames(room)}
    for tick in range(first["tick"], again["tick"]):
        state = DEMO.step(state, tick, received[tick])
    assert again["state"]["data"] == DEMO.to_data(state)
    assert again["state"]["data"]["players"][host.player_id] is not None
    after = await survivor.frame(room, again["tick"] + 2)
    assert after["room"] == room
    log = node_b.log()
    assert f"room {room} re-created from its replay log at tick {again['tick']}" in log
    await survivor.close()

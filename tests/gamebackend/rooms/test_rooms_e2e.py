"""Rooms against a real Daphne node over real sockets: lockstep frames, bad input, faults."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest

from gameproto.sims import DEMO
from tests.gamebackend.rooms.players import Player, new_id
from tests.nodes import Node, start_node

pytestmark = pytest.mark.slow

LOG_WAIT_S = 15.0
# Short, so the idle test needs no node of its own; every other test keeps a member in
# its room for as long as it uses it.
IDLE_S = 0.5


@pytest.fixture(scope="module")
def rooms_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    node = start_node(
        tmp_path_factory.mktemp("rooms") / "var",
        # 65 players connect from 127.0.0.1 at once (the 64-member test).
        env={"GAME_ROOM_IDLE_S": str(IDLE_S), "GAME_MAX_CONNS_PER_IP": "256"},
    )
    yield node
    node.stop()


async def test_players_meet_and_get_the_same_frames_in_step(rooms_node: Node) -> None:
    room = new_id("r")
    amy, zed = (
        await Player.connect(rooms_node, "amy-" + room),
        await Player.connect(rooms_node, "zed-" + room),
    )
    joined_a = await amy.join(room, tick_rate=30)
    assert (joined_a["tick_rate"], joined_a["members"]) == (30, [amy.player_id])
    assert amy.frames(room) == []  # nothing of the room before `joined`
    # create options of an existing room are ignored: the reply says what it has.
    joined_z = await zed.join(room, tick_rate=5, max_players=2)
    assert (joined_z["tick_rate"], joined_z["max_players"]) == (30, 16)
    assert joined_z["members"] == [amy.player_id, zed.player_id]
    assert zed.frames(room) == []
    announce = await amy.until(lambda m: m["type"] == "member_joined")
    assert (announce["player_id"], announce["tick"]) == (zed.player_id, joined_z["tick"])
    target = joined_z["tick"] + 5
    await zed.send({"type": "input", "room": room, "tick": target, "keys": 0})
    await amy.send({"type": "input", "room": room, "tick": target, "keys": 9})
    frame_z = await zed.frame(room, target)
    frame_a = await amy.frame(room, target)
    # Inputs in player-id order; keys 0 is an input like any other.
    expected = [[amy.player_id, 9], [zed.player_id, 0]]
    assert frame_z["tick"] == frame_a["tick"] == target
    assert frame_z["inputs"] == frame_a["inputs"] == expected
    ticks = [f["tick"] for f in zed.frames(room)]
    assert ticks[0] >= joined_z["tick"]
    assert ticks == list(range(ticks[0], ticks[-1] + 1))  # a frame every tick, in order
    assert all(f["inputs"] == [] for f in zed.frames(room) if f["tick"] != target)
    await amy.close()
    await zed.close()


async def test_bad_inputs_are_answered_and_the_room_keeps_running(rooms_node: Node) -> None:
    room = new_id("r")
    a, b = await Player.connect(rooms_node), await Player.connect(rooms_node)
    joined = await a.join(room, sim="demo")
    await b.join(room)
    not_in = await a.request({"type": "input", "room": new_id("elsewhere"), "tick": 1, "keys": 1})
    assert (not_in["code"], not_in["field"]) == ("invalid", "room")
    ahead = await a.request({"type": "input", "room": room, "tick": 10**9, "keys": 1})
    assert (ahead["code"], ahead["field"]) == ("invalid", "tick")
    behind = await a.request({"type": "input", "room": room, "tick": -3, "keys": 1})
    assert (behind["code"], behind["field"]) == ("invalid", "tick")
    for keys in (70000, -1, 1.5, "up", None):
        bad = await a.request({"type": "input", "room": room, "tick": 1, "keys": keys})
        assert (bad["code"], bad["field"]) == ("invalid", "keys"), keys
    leave_other = await b.request({"type": "leave", "room": new_id("nowhere")})
    assert (leave_other["code"], leave_other["field"]) == ("invalid", "room")
    # A late input is no error: it is counted and applied to the next open tick.
    first = await a.frame(room, joined["tick"] + 2)
    late = await a.request({"type": "input", "room": room, "tick": first["tick"] - 1, "keys": 8})
    assert late["type"] == "ok"
    applied = await a.until(lambda m: m["type"] == "frame" and m["inputs"] != [])
    assert applied["inputs"] == [[a.player_id, 8]]
    assert applied["tick"] > first["tick"]
    # A digest that disagrees with the server's simulation: desync to every member.
    ok = await a.request({"type": "hash", "room": room, "tick": applied["tick"], "h": 12345})
    assert ok["type"] == "ok"
    for player in (a, b):
        desync = await player.until(lambda m: m["type"] == "desync")
        assert desync["tick"] == applied["tick"]
        assert desync["digests"] == {a.player_id: 12345}
        assert desync["server"] != 12345
        assert 0 <= desync["server"] < 2**63
    # ...and the room keeps running.
    after = await b.frame(room, applied["tick"] + 3)
    assert after["room"] == room
    log = rooms_node.log()
    assert f"room {room}: desync at tick {applied['tick']}" in log
    await a.close()
    await b.close()


async def test_a_late_joiner_starts_from_the_server_state_and_agrees(rooms_node: Node) -> None:
    room = new_id("r")
    a = await Player.connect(rooms_node)
    joined_a = await a.join(room, sim="demo", input_delay=1)
    state = DEMO.from_data(joined_a["state"]["data"])
    assert joined_a["state"]["tick"] == joined_a["tick"]
    next_tick = joined_a["tick"]
    for keys in (8, 8, 2, 1 | 4):
        await a.send({"type": "input", "room": room, "tick": next_tick + 1, "keys": keys})
        frame = await a.frame(room, next_tick + 1)
        next_tick = frame["tick"] + 1
    b = await Player.connect(rooms_node)
    joined_b = await b.join(room)
    assert joined_b["sim"] == "demo"
    # A simulates every frame from its join on; at B's join tick both states agree.
    await a.frame(room, joined_b["tick"] - 1)
    by_tick = {f["tick"]: f["inputs"] for f in a.frames(room)}
    for tick in range(joined_a["tick"], joined_b["tick"]):
        state = DEMO.step(state, tick, by_tick[tick])
    assert DEMO.to_data(state) == joined_b["state"]["data"]
    assert a.player_id in joined_b["state"]["data"]["players"]
    # Reporting the right digest raises nothing.
    ok = await a.request(
        {"type": "hash", "room": room, "tick": joined_b["tick"] - 1, "h": DEMO.digest(state)}
    )
    assert ok["type"] == "ok"
    await b.frame(room, joined_b["tick"] + 2)
    assert a.of_type("desync") == []
    assert b.of_type("desync") == []
    await a.close()
    await b.close()


async def test_a_member_that_drops_resumes_and_gets_the_missed_frames_once(
    rooms_node: Node,
) -> None:
    room = new_id("r")
    a, b = await Player.connect(rooms_node), await Player.connect(rooms_node)
    await a.join(room, tick_rate=20)
    await b.join(room)
    await b.frame(room)
    b.raw.ws.transport.abort()  # mid-battle, no close frame
    seen_before = [f["tick"] for f in b.frames(room)]
    # The other member keeps receiving frames meanwhile.
    await a.frame(room, seen_before[-1] + 10)
    b2 = await Player.connect(
        rooms_node, b.player_id, resume=b.welcome["session_id"], last_seq=b.last_seq
    )
    assert b2.welcome["resumed"] is True
    b2.last_seq = b.last_seq
    await b2.frame(room, seen_before[-1] + 15)
    ticks = seen_before + [f["tick"] for f in b2.frames(room)]
    assert ticks == list(range(ticks[0], ticks[-1] + 1))  # each tick exactly once
    await a.close()
    await b2.close()


async def test_leave_and_session_end_tell_the_others(rooms_node: Node) -> None:
    room = new_id("r")
    players = [await Player.connect(rooms_node) for _ in range(3)]
    a, b, c = players
    for player in players:
        await player.join(room)
    ok = await b.request({"type": "leave", "room": room})
    assert ok["type"] == "ok"
    left = await a.until(lambda m: m["type"] == "member_left")
    assert left["player_id"] == b.player_id
    again = await b.request({"type": "leave", "room": room})
    assert (again["code"], again["field"]) == ("invalid", "room")
    await c.close(1000)  # ends the session: c leaves every room
    left = await a.until(lambda m: m["type"] == "member_left")
    assert left["player_id"] == c.player_id
    rejoined = await b.join(room)
    assert rejoined["members"] == [a.player_id, b.player_id]
    await a.close()
    await b.close()


async def test_chat_reaches_every_member_and_the_sender(rooms_node: Node) -> None:
    room = new_id("r")
    a, b = await Player.connect(rooms_node), await Player.connect(rooms_node)
    await a.join(room)
    await b.join(room)
    mine = await a.request({"type": "chat", "room": room, "text": "gg \U0001f600"})
    assert (mine["type"], mine["player_id"], mine["text"]) == ("chat", a.player_id, "gg \U0001f600")
    theirs = await b.until(lambda m: m["type"] == "chat")
    assert (theirs["player_id"], theirs["text"]) == (a.player_id, "gg \U0001f600")
    assert "re" not in theirs
    too_long = await a.request({"type": "chat", "room": room, "text": "x" * 257})
    assert (too_long["code"], too_long["field"]) == ("invalid", "text")
    await a.close()
    await b.close()


async def test_sync_serves_the_history_and_refuses_older_ticks(rooms_node: Node) -> None:
    room = new_id("r")
    a = await Player.connect(rooms_node)
    joined = await a.join(room, tick_rate=60)
    await a.send({"type": "input", "room": room, "tick": joined["tick"] + 3, "keys": 4})
    await a.frame(room, joined["tick"] + 140)  # past the 128-frame history
    reply = await a.request({"type": "sync", "room": room, "from_tick": joined["tick"] + 100})
    got = {f["tick"]: f["inputs"] for f in reply["frames"]}
    live = {f["tick"]: f["inputs"] for f in a.frames(room)}
    assert list(got) == sorted(got)
    assert min(got) == joined["tick"] + 100
    assert all(live[tick] == inputs for tick, inputs in got.items() if tick in live)
    old = await a.request({"type": "sync", "room": room, "from_tick": joined["tick"] + 3})
    assert old["code"] == "sync_too_old"
    await a.close()


async def test_64_members_join_at_once_and_the_65th_is_refused(rooms_node: Node) -> None:
    room = new_id("big")
    players = await asyncio.gather(*(Player.connect(rooms_node) for _ in range(65)))
    await players[0].join(room, tick_rate=2, max_players=64)
    replies = await asyncio.gather(
        *(p.request({"type": "join", "room": room}) for p in players[1:])
    )
    kinds = sorted(r["type"] if r["type"] == "joined" else r["code"] for r in replies)
    assert kinds == ["joined"] * 63 + ["room_full"]
    joined = [p for p, r in zip(players[1:], replies, strict=True) if r["type"] == "joined"]
    last = max(r["tick"] for r in replies if r["type"] == "joined")
    frames = await asyncio.gather(*(p.frame(room, last) for p in [players[0], *joined]))
    assert len({f["tick"] for f in frames}) == 1  # every member got the same frame
    await asyncio.gather(*(p.close() for p in players))


async def test_a_join_flood_is_rate_limited(rooms_node: Node) -> None:
    a = await Player.connect(rooms_node)
    for i in range(20):
        await a.send({"type": "join", "room": f"flood-{a.player_id[:8]}-{i % 3}", "id": i})
    # Refusals come from the gateway at once, joins later from the rooms: in any order.
    await a.until(lambda m: len([r for r in a.seen if isinstance(r.get("re"), int)]) == 20)
    replies = [r for r in a.seen if isinstance(r.get("re"), int)]
    limited = [r for r in replies if r.get("code") == "rate_limited"]
    # Burst 10 at 5/s: about half of twenty back-to-back joins are refused, with a hint.
    assert 5 <= len(limited) <= 12
    assert all(r["retry_after_ms"] > 0 for r in limited)
    assert sum(1 for r in replies if r["type"] == "joined") == 20 - len(limited)
    await a.close()


async def test_an_empty_room_stops_after_the_idle_time(rooms_node: Node) -> None:
    node = rooms_node
    room = new_id("idle")
    a = await Player.connect(node)
    await a.join(room)
    await a.frame(room, 3)
    await a.request({"type": "leave", "room": room})
    deadline = time.monotonic() + LOG_WAIT_S
    while f"room {room} stopped" not in node.log():
        assert time.monotonic() < deadline, node.log()[-2000:]
        await asyncio.sleep(0.1)  # polling a log file: there is no event to await
    again = await a.join(room)
    assert again["tick"] == 0  # a new battle
    await a.close()

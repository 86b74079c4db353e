"""The reliable stream against a real Daphne node: seq/ack, resume, heartbeat, replace."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.exceptions import ConnectionClosed

from tests.gateway.wsclient import Raw
from tests.nodes import Node, NodeFactory

pytestmark = pytest.mark.slow


def new_player() -> str:
    return f"p{uuid.uuid4().hex[:12]}"


async def open_session(node: Node, player: str, **query: object) -> tuple[Raw, dict[str, Any]]:
    raw = await Raw.open(node.url(player, **query))
    welcome = await raw.recv()
    assert welcome["type"] == "welcome"
    return raw, welcome


async def test_move_is_answered_with_state_and_rev_grows(node: Node) -> None:
    player = new_player()
    raw, _ = await open_session(node, player)
    assert (await raw.recv())["seq"] == 1
    reply = await raw.request({"type": "move", "x": 10, "y": 20.5, "id": 7})
    assert reply == {
        "type": "state", "seq": 2, "re": 7, "player_id": player, "x": 10.0, "y": 20.5, "rev": 1,
    }  # fmt: skip
    reply = await raw.request({"type": "state", "id": "s1"})
    assert (reply["seq"], reply["re"], reply["rev"]) == (3, "s1", 1)
    await raw.close()


async def test_msgpack_codec_speaks_the_same_messages(node: Node) -> None:
    raw = await Raw.open(node.url(new_player()), binary=True)
    assert raw.ws.subprotocol == "game.v1.msgpack"
    assert (await raw.recv())["type"] == "welcome"
    await raw.recv()
    reply = await raw.request({"type": "move", "x": 1, "y": 2, "id": 1})
    assert (reply["type"], reply["x"], reply["y"]) == ("state", 1.0, 2.0)
    # A text frame is the wrong kind for this codec.
    await raw.ws.send('{"type":"state"}')
    assert (await raw.recv())["code"] == "bad_message"
    await raw.close()


@settings(
    max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    total=st.integers(min_value=1, max_value=30),
    read_before_drop=st.integers(min_value=0, max_value=31),
    ack_every=st.integers(min_value=1, max_value=10),
)
async def test_resume_replays_exactly_the_unseen_messages(
    node: Node, total: int, read_before_drop: int, ack_every: int
) -> None:
    player = new_player()
    raw, welcome = await open_session(node, player)
    session_id = welcome["session_id"]
    seen: list[int] = []
    seen.append((await raw.recv())["seq"])  # the initial state
    for i in range(total):
        await raw.send({"type": "move", "x": i + 1, "y": 0, "id": i})
    # Read some of the answers (acking now and then), then drop the TCP connection.
    for _ in range(min(read_before_drop, total)):
        msg = await raw.recv()
        seen.append(msg["seq"])
        if msg["seq"] % ack_every == 0:
            await raw.send({"type": "ack", "seq": msg["seq"]})
    raw.ws.transport.abort()
    last = seen[-1]
    raw2, welcome2 = await open_session(node, player, resume=session_id, last_seq=last)
    assert welcome2["resumed"] is True
    assert welcome2["session_id"] == session_id
    assert welcome2["last_seq"] == total + 1
    while len(seen) < total + 1:
        seen.append((await raw2.recv())["seq"])
    # One more request proves the stream carries on after the replay.
    after = await raw2.request({"type": "state", "id": "after"})
    seen.append(after["seq"])
    # Nothing lost, nothing duplicated, original numbers, in order.
    assert seen == list(range(1, total + 3))
    assert after["x"] == float(total)
    await raw2.close()


async def test_resume_that_cannot_reach_back_starts_a_new_session(node: Node) -> None:
    player = new_player()
    raw, welcome = await open_session(node, player)
    await raw.recv()
    await raw.request({"type": "move", "x": 3, "y": 4, "id": 1})
    await raw.send({"type": "ack", "seq": 2})
    await raw.request({"type": "state", "id": 2})  # makes sure the ack was processed
    raw.ws.transport.abort()
    raw2, welcome2 = await open_session(node, player, resume=welcome["session_id"], last_seq=1)
    assert welcome2["resumed"] is False
    assert welcome2["session_id"] != welcome["session_id"]
    state = await raw2.recv()
    # The new session starts at seq 1 with the full state, which kept the move.
    assert (state["type"], state["seq"], state["x"], state["y"]) == ("state", 1, 3.0, 4.0)
    await raw2.close()


async def test_resume_of_another_players_session_is_refused(node: Node) -> None:
    raw, welcome = await open_session(node, new_player())
    other, welcome2 = await open_session(
        node, new_player(), resume=welcome["session_id"], last_seq=0
    )
    assert welcome2["resumed"] is False
    assert welcome2["session_id"] != welcome["session_id"]
    await raw.close()
    await other.close()


async def test_client_close_1000_ends_the_session(node: Node) -> None:
    player = new_player()
    raw, welcome = await open_session(node, player)
    await raw.recv()
    await raw.close(1000)
    raw2, welcome2 = await open_session(node, player, resume=welcome["session_id"], last_seq=1)
    assert welcome2["resumed"] is False
    await raw2.close()


async def test_new_connection_replaces_the_old_one_with_4409(node: Node) -> None:
    player = new_player()
    first, _ = await open_session(node, player)
    await first.recv()
    second, welcome2 = await open_session(node, player)
    assert await first.closed_with() == 4409
    assert welcome2["resumed"] is False
    # With resume parameters the session itself moves to the newer connection.
    third, welcome3 = await open_session(node, player, resume=welcome2["session_id"], last_seq=0)
    assert await second.closed_with() == 4409
    assert welcome3["resumed"] is True
    assert (await third.recv())["seq"] == 1  # replayed state of the moved session
    await third.close()


async def test_silent_client_is_closed_with_4408_and_can_resume(node: Node) -> None:
    player = new_player()
    raw, welcome = await open_session(node, player)
    await raw.recv()
    # Never answer pings: after 3 misses the next due ping closes the connection.
    with pytest.raises(ConnectionClosed) as closed:
        await raw.drain(answer_pings=False)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 4408
    assert raw.pings == 3
    raw2, welcome2 = await open_session(node, player, resume=welcome["session_id"], last_seq=1)
    assert welcome2["resumed"] is True
    await raw2.close()


async def test_answered_pings_keep_the_connection(node: Node) -> None:
    raw, _ = await open_session(node, new_player())
    await raw.recv()
    # Five heartbeat intervals (0.6 s each) answered: still open, still answering.
    await raw.answer_pings_until(5)
    reply = await raw.request({"type": "ping", "ts": 42, "id": "p"})
    assert reply == {"type": "pong", "ts": 42, "re": "p"}
    await raw.close()


async def test_an_active_client_is_never_pinged(node: Node) -> None:
    raw, _ = await open_session(node, new_player())
    await raw.recv()
    # Any frame counts as liveness: a client sending 10 requests per heartbeat interval
    # (0.6 s) for five intervals gets replies and no ping at all.
    for i in range(30):
        await raw.request({"type": "state", "id": i, "ack": i + 1})
        await asyncio.sleep(0.06)  # the client's own pace, not a wait for the server
    assert raw.pings == 0
    # Once it goes quiet, the heartbeat pings it again.
    await raw.answer_pings_until(1)
    await raw.close()


async def test_unacknowledged_outbox_closes_with_4413_not_resumable(
    node_factory: NodeFactory,
) -> None:
    node = node_factory(GAME_OUTBOX_MAX="5")
    player = new_player()
    raw, welcome = await open_session(node, player)
    for i in range(6):
        await raw.send({"type": "state", "id": i})
    assert await raw.closed_with() == 4413
    raw2, welcome2 = await open_session(node, player, resume=welcome["session_id"], last_seq=0)
    assert welcome2["resumed"] is False
    await raw2.close()

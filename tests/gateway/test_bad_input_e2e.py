"""Bad input against a real Daphne node: a clear error, the connection and others carry on."""

from __future__ import annotations

import json
import signal
import time
import uuid
from pathlib import Path

import pytest
from websockets.exceptions import ConnectionClosed

from gamebackend.gateway.consumer import MAX_QUERY_FIELDS
from gamebackend.players.journal import FlushJournal
from tests.gateway.wsclient import Raw, refused_status
from tests.nodes import Node, NodeFactory

pytestmark = pytest.mark.slow


async def connected(node: Node) -> Raw:
    raw = await Raw.open(node.url(f"p{uuid.uuid4().hex[:12]}"))
    assert (await raw.recv())["type"] == "welcome"
    assert (await raw.recv())["type"] == "state"
    return raw


MALFORMED = [
    pytest.param("not json at all", "bad_message", None, id="not-json"),
    pytest.param("[1, 2, 3]", "bad_message", None, id="array"),
    pytest.param('"just a string"', "bad_message", None, id="string"),
    pytest.param("null", "bad_message", None, id="null"),
    pytest.param("[" * 30_000 + "]" * 30_000, "bad_message", None, id="deep-nesting"),
    pytest.param('{"x": 1}', "invalid", "type", id="missing-type"),
    pytest.param('{"type": 5}', "invalid", "type", id="non-string-type"),
    pytest.param('{"type": "teleport"}', "unknown_type", None, id="unknown-type"),
    pytest.param('{"type": "move", "x": "a", "y": 1}', "invalid", "x", id="wrong-field-type"),
    pytest.param('{"type": "move", "y": 1}', "invalid", "x", id="missing-field"),
    pytest.param('{"type": "move", "x": 1e400, "y": 1}', "bad_message", None, id="huge-float"),
    pytest.param('{"type": "move", "x": 1' + "0" * 400 + ', "y": 1}', None, None, id="huge-int"),
    pytest.param('{"type": "move", "x": 10001, "y": 1}', "invalid", "x", id="out-of-world"),
    pytest.param('{"type": "move", "x": -1, "y": 1}', "invalid", "x", id="negative"),
    pytest.param('{"type": "ack", "seq": 999999}', "invalid", "seq", id="ack-unsent"),
    pytest.param('{"type": "state", "id": [1]}', "invalid", "id", id="bad-id-type"),
    pytest.param('{"type": "state", "id": "' + "i" * 65 + '"}', "invalid", "id", id="long-id"),
]


@pytest.mark.parametrize(("frame", "code", "field"), MALFORMED)
async def test_malformed_frame_gets_an_error_and_the_connection_stays(
    node: Node, frame: str, code: str | None, field: str | None
) -> None:
    raw = await connected(node)
    await raw.ws.send(frame)
    error = await raw.recv()
    assert error["type"] == "error"
    if code is not None:
        assert error["code"] == code
    else:
        assert error["code"] in {"bad_message", "invalid"}
    if field is not None:
        assert error["field"] == field
    assert isinstance(error["seq"], int)
    reply = await raw.request({"type": "state", "id": "still-here"})
    assert reply["type"] == "state"
    await raw.close()


async def test_request_id_is_echoed_on_errors_verbatim(node: Node) -> None:
    raw = await connected(node)
    await raw.send({"type": "move", "x": -5, "y": 0, "id": "r-1"})
    assert (await raw.recv())["re"] == "r-1"
    await raw.send({"type": "teleport", "id": 99})
    error = await raw.recv()
    assert (error["code"], error["re"]) == ("unknown_type", 99)
    await raw.close()


async def test_binary_frame_on_the_json_codec_is_bad_message(node: Node) -> None:
    raw = await connected(node)
    await raw.ws.send(json.dumps({"type": "state"}).encode())
    assert (await raw.recv())["code"] == "bad_message"
    await raw.close()


async def test_too_many_bad_frames_close_with_4400_and_others_carry_on(node: Node) -> None:
    bystander = await connected(node)
    raw = await connected(node)
    for _ in range(11):
        await raw.ws.send("garbage")
    assert await raw.closed_with() == 4400
    reply = await bystander.request({"type": "move", "x": 1, "y": 1, "id": 1})
    assert reply["type"] == "state"
    await bystander.close()


async def test_oversize_message_closes_with_1009(node: Node) -> None:
    raw = await connected(node)
    big = json.dumps({"type": "state", "pad": "x" * (64 * 1024)})
    await raw.ws.send(big)
    with pytest.raises(ConnectionClosed) as closed:
        await raw.recv()
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1009
    # Just under the limit is fine.
    raw2 = await connected(node)
    await raw2.ws.send(json.dumps({"type": "state", "id": 1, "pad": "x" * 60_000}))
    assert (await raw2.recv())["re"] == 1
    await raw2.close()


async def test_sigterm_closes_sockets_with_1001_and_exits(node_factory: NodeFactory) -> None:
    node = node_factory()
    player = f"p{uuid.uuid4().hex[:12]}"
    raw = await Raw.open(node.url(player))
    assert (await raw.recv())["type"] == "welcome"
    assert (await raw.recv())["type"] == "state"
    await raw.request({"type": "move", "x": 7, "y": 8, "id": 1})
    started = time.monotonic()
    node.proc.send_signal(signal.SIGTERM)
    assert await raw.closed_with() == 1001
    assert node.proc.wait(timeout=10) == 0
    assert time.monotonic() - started < 10
    assert "closed 1 connections; stopping actors" in node.log()
    # With no worker to commit it, the player's last state stays in the node's flush
    # journal (sent to the broker, or not even that if the drain ran out of time), so
    # the next start sends it again.
    var_dir = Path(node.env["GAME_VAR_DIR"])
    journaled = [
        state
        for path in (var_dir / "flush").glob("*.sqlite3")
        for batch in FlushJournal(path).load()
        for state in batch["states"]
        if state["player_id"] == player
    ]
    assert journaled
    assert (journaled[-1]["x"], journaled[-1]["y"]) == (7, 8)


async def test_upgrades_during_shutdown_are_refused(node_factory: NodeFactory) -> None:
    node = node_factory(GAME_SHUTDOWN_TIMEOUT_S="3")
    raw = await connected(node)
    node.proc.send_signal(signal.SIGTERM)
    assert await raw.closed_with() == 1001
    status = None
    try:
        status = await refused_status(node.url("late-comer"))
    except OSError:
        status = -1  # the listener already went away: also a refusal
    assert status in (403, -1)
    node.proc.wait(timeout=10)


async def test_too_many_query_parameters_are_refused_with_403(node: Node) -> None:
    # Regression: parse_qs(max_num_fields=16) raised inside connect; Daphne answered 500
    # and logged a traceback for every attempt.
    log_before = len(node.log())
    padding = {f"p{i}": i for i in range(MAX_QUERY_FIELDS)}  # with the ticket: one too many
    for _ in range(2):
        assert await refused_status(node.url(f"q{uuid.uuid4().hex[:12]}", **padding)) == 403
    new_log = node.log()[log_before:]
    assert new_log.count("refused: too_many_query_parameters") == 2
    assert "Traceback" not in new_log
    assert " 500 " not in new_log
    # At the limit it is an ordinary connect.
    fits = {f"p{i}": i for i in range(MAX_QUERY_FIELDS - 1)}
    raw = await Raw.open(node.url(f"q{uuid.uuid4().hex[:12]}", **fits))
    assert (await raw.recv())["type"] == "welcome"
    await raw.close()


async def test_compression_is_never_negotiated(node: Node) -> None:
    raw = await Raw.open(node.url(f"p{uuid.uuid4().hex[:12]}"), compression="deflate")
    assert (await raw.recv())["type"] == "welcome"
    # permessage-deflate would let a small frame inflate past the size limit.
    assert raw.ws.response is not None
    assert "Sec-WebSocket-Extensions" not in raw.ws.response.headers
    await raw.close()

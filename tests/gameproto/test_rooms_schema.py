"""The room messages of the wire contract: what decodes, and what is `invalid` with which field."""

from __future__ import annotations

import json
from typing import Any

import pytest

import gameproto as p
from gameproto.rooms import DIGEST_MAX, KEYS_MAX, MAX_CHAT_CHARS

CODECS = [p.JSON_CODEC, p.MSGPACK_CODEC]


def decode(codec: p.Codec, value: dict[str, Any]) -> p.ClientMessage:
    import msgspec

    if codec.binary:
        return p.decode_client(codec, None, msgspec.msgpack.encode(value))
    return p.decode_client(codec, json.dumps(value), None)


def rejected(value: dict[str, Any], codec: p.Codec = p.JSON_CODEC) -> p.ProtocolError:
    with pytest.raises(p.ProtocolError) as info:
        decode(codec, value)
    return info.value


@pytest.mark.parametrize("codec", CODECS, ids=lambda c: c.name)
def test_room_messages_decode(codec: p.Codec) -> None:
    assert decode(codec, {"type": "join", "room": "arena-1:x.y_z"}) == p.Join(room="arena-1:x.y_z")
    join = decode(codec, {"type": "join", "room": "a", "create": {"tick_rate": 60, "sim": "demo"}})
    assert join == p.Join(room="a", create=p.RoomCreate(tick_rate=60, sim="demo"))
    assert decode(codec, {"type": "leave", "room": "a", "id": 3}) == p.Leave(room="a", id=3)
    assert decode(codec, {"type": "input", "room": "a", "tick": 0, "keys": 0}) == p.Input(
        room="a", tick=0, keys=0
    )
    top = decode(codec, {"type": "input", "room": "a", "tick": 9, "keys": KEYS_MAX})
    assert top == p.Input(room="a", tick=9, keys=KEYS_MAX)
    assert decode(codec, {"type": "sync", "room": "a", "from_tick": 5}) == p.Sync(
        room="a", from_tick=5
    )
    assert decode(codec, {"type": "hash", "room": "a", "tick": 5, "h": DIGEST_MAX}) == p.Hash(
        room="a", tick=5, h=DIGEST_MAX
    )
    assert decode(codec, {"type": "chat", "room": "a", "text": "hi"}) == p.Chat(room="a", text="hi")


@pytest.mark.parametrize(
    ("value", "field"),
    [
        ({"type": "join", "room": ""}, "room"),
        ({"type": "join", "room": "x" * 65}, "room"),
        ({"type": "join", "room": "a b"}, "room"),
        ({"type": "join", "room": "a", "create": {"tick_rate": 0}}, "create.tick_rate"),
        ({"type": "join", "room": "a", "create": {"tick_rate": 61}}, "create.tick_rate"),
        ({"type": "join", "room": "a", "create": {"max_players": 65}}, "create.max_players"),
        ({"type": "join", "room": "a", "create": {"max_players": 0}}, "create.max_players"),
        ({"type": "join", "room": "a", "create": {"input_delay": 11}}, "create.input_delay"),
        ({"type": "join", "room": "a", "create": {"late_policy": "wait"}}, "create.late_policy"),
        ({"type": "join", "room": "a", "create": {"sim": ""}}, "create.sim"),
        ({"type": "join", "room": "a", "create": 5}, "create"),
        ({"type": "input", "room": "a", "tick": -1, "keys": 1}, "tick"),
        ({"type": "input", "room": "a", "tick": 1, "keys": -1}, "keys"),
        ({"type": "input", "room": "a", "tick": 1, "keys": KEYS_MAX + 1}, "keys"),
        ({"type": "input", "room": "a", "tick": 1, "keys": 1.5}, "keys"),
        ({"type": "input", "room": "a", "tick": 1, "keys": "1"}, "keys"),
        ({"type": "input", "room": "a", "tick": 1, "keys": True}, "keys"),
        ({"type": "input", "room": "a", "tick": 1}, "keys"),
        ({"type": "sync", "room": "a", "from_tick": -5}, "from_tick"),
        ({"type": "hash", "room": "a", "tick": 1, "h": -1}, "h"),
        ({"type": "hash", "room": "a", "tick": 1, "h": DIGEST_MAX + 1}, "h"),
        ({"type": "chat", "room": "a", "text": ""}, "text"),
        ({"type": "chat", "room": "a", "text": "x" * (MAX_CHAT_CHARS + 1)}, "text"),
    ],
)
def test_out_of_range_fields_are_invalid_and_named(value: dict[str, Any], field: str) -> None:
    for codec in CODECS:
        error = rejected({**value, "id": "r"}, codec)
        assert (error.code, error.field, error.re) == (p.INVALID, field, "r")


def test_chat_length_counts_code_points_not_bytes() -> None:
    emoji = "\U0001f600"  # 4 bytes in UTF-8, 2 UTF-16 units, 1 code point
    assert decode(p.JSON_CODEC, {"type": "chat", "room": "a", "text": emoji * MAX_CHAT_CHARS})
    assert (
        rejected({"type": "chat", "room": "a", "text": emoji * (MAX_CHAT_CHARS + 1)}).field
        == "text"
    )


@pytest.mark.parametrize("codec", CODECS, ids=lambda c: c.name)
def test_server_room_messages_round_trip(codec: p.Codec) -> None:
    messages: list[p.ServerMessage] = [
        p.Joined(
            seq=3, room="a", tick_rate=20, tick=7, input_delay=2, late_policy="shift",
            max_players=16, members=["x", "y"], sim="demo",
            state=p.RoomSnapshot(tick=7, data={"grid": 64, "players": {"x": [1, 2]}}), re=1,
        ),
        p.MemberJoined(seq=4, room="a", player_id="y", tick=7),
        p.MemberLeft(seq=5, room="a", player_id="y", tick=9),
        p.Frame(seq=6, room="a", tick=9, inputs=[("x", 0), ("y", 15)]),
        p.Frames(seq=7, room="a", frames=[p.FrameEntry(tick=9, inputs=[("x", 1)])], re="s"),
        p.Desync(seq=8, room="a", tick=9, digests={"x": 1, "y": 2}, server=3),
        p.ChatMessage(seq=9, room="a", player_id="x", text="hi"),
    ]  # fmt: skip
    for msg in messages:
        encoded = codec.encode(msg)
        text, data = (encoded, None) if isinstance(encoded, str) else (None, encoded)
        decoded = p.decode_server(codec, text, data)
        # msgspec gives arrays back as lists, tuples included.
        assert p.JSON_CODEC.encode(decoded) == p.JSON_CODEC.encode(msg)


def test_frame_wire_shape() -> None:
    wire = json.loads(p.JSON_CODEC.encode(p.Frame(seq=1, room="a", tick=2, inputs=[])))
    assert wire == {"type": "frame", "seq": 1, "room": "a", "tick": 2, "inputs": []}
    wire = json.loads(p.JSON_CODEC.encode(p.Joined(
        seq=1, room="a", tick_rate=20, tick=0, input_delay=2, late_policy="drop", max_players=4,
        members=[],
    )))  # fmt: skip
    assert "sim" not in wire
    assert "state" not in wire
    assert "re" not in wire

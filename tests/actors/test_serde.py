from __future__ import annotations

import re

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from actors import PID, channel_name, register_message
from actors._remote import validate_prefix
from actors._serde import (
    ASK,
    Wire,
    decode_message,
    decode_wire,
    encode_message,
    encode_wire,
)

_CHANNEL_RE = re.compile(r"^[a-zA-Z\d\-_.]+$")


@register_message
class Move(msgspec.Struct, frozen=True):
    x: int
    y: int
    who: PID | None = None


class Unregistered(msgspec.Struct):
    a: int


def test_registered_struct_round_trip() -> None:
    msg = Move(1, -2, PID("n@h:1", "p"))
    type_name, body = encode_message(msg)
    assert type_name.endswith("Move")
    assert decode_message(type_name, body) == msg


@pytest.mark.parametrize(
    "msg", [None, True, 3, 2.5, "text", [1, "a", None], {"k": [1, {"n": 2.0}]}, PID("n@h:1", "p")]
)
def test_plain_data_round_trip(msg: object) -> None:
    assert decode_message(*encode_message(msg)) == msg


def test_tuples_arrive_as_lists() -> None:
    assert decode_message(*encode_message((1, 2))) == [1, 2]


def test_unregistered_types_are_refused_at_send_time() -> None:
    with pytest.raises(TypeError, match="register_message"):
        encode_message(Unregistered(1))
    with pytest.raises(TypeError, match="register_message"):
        encode_message(object())


def test_unknown_type_name_on_decode() -> None:
    with pytest.raises(TypeError, match="unknown message type"):
        decode_message("nobody.Registered", encode_message(1)[1])


def test_register_with_explicit_name_and_conflicts() -> None:
    class A(msgspec.Struct):
        v: int

    class B(msgspec.Struct):
        v: int

    assert register_message(A, name="tests.serde.A") is A
    assert register_message(A, name="tests.serde.A") is A  # idempotent
    with pytest.raises(ValueError, match="already registered"):
        register_message(B, name="tests.serde.A")
    with pytest.raises(TypeError, match=r"msgspec\.Struct"):
        register_message(dict)  # type: ignore[type-var]


def test_wire_envelope_round_trip() -> None:
    type_name, body = encode_message(Move(3, 4))
    wire = Wire(ASK, target="room-1", type=type_name, body=body, corr=9, reply_to="r", sender="")
    back = decode_wire(encode_wire(wire))
    assert (back.kind, back.target, back.corr, back.reply_to) == (ASK, "room-1", 9, "r")
    assert decode_message(back.type, back.body) == Move(3, 4)


@given(node=st.text(min_size=1, max_size=300))
def test_channel_names_are_always_valid(node: str) -> None:
    for kind in ("node", "reply"):
        name = channel_name("actors", kind, node)
        assert _CHANNEL_RE.match(name)
        assert len(name) < 100


def test_channel_names_distinguish_nodes_that_sanitise_alike() -> None:
    assert channel_name("a", "node", "x@h:1") != channel_name("a", "node", "x_h_1")
    assert channel_name("a", "node", "x@h:1") == channel_name("a", "node", "x@h:1")


def test_prefix_validation() -> None:
    assert validate_prefix("actors.t-1_x") == "actors.t-1_x"
    for bad in ("", "has space", "slash/", "x" * 41):
        with pytest.raises(ValueError, match="channel prefix"):
            validate_prefix(bad)

"""The wire contract's schemas and codecs (no Django)."""

from __future__ import annotations

import math

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import gameproto as protocol
from gameproto import (
    BAD_MESSAGE,
    INVALID,
    JSON_CODEC,
    MSGPACK_CODEC,
    UNKNOWN_TYPE,
    Ack,
    ClientMessage,
    CloseCode,
    Codec,
    Error,
    Move,
    Ok,
    Ping,
    Pong,
    ProtocolError,
    ServerPing,
    ServerPong,
    State,
    StateReq,
    Welcome,
    decode_client,
    decode_server,
    negotiate,
    peek_seq,
)
from gameproto import messages as registry

CODECS = [JSON_CODEC, MSGPACK_CODEC]
_json = msgspec.json.Encoder()
_msgpack = msgspec.msgpack.Encoder()


def frame(codec: Codec, value: object) -> tuple[str | None, bytes | None]:
    """Encode an arbitrary Python value as a frame of the codec's kind."""
    if codec.binary:
        return None, _msgpack.encode(value)
    return _json.encode(value).decode(), None


def decode(codec: Codec, value: object, **kwargs: float) -> ClientMessage:
    text, data = frame(codec, value)
    return decode_client(codec, text, data, **kwargs)


def rejected(codec: Codec, text: str | None, data: bytes | None) -> ProtocolError:
    with pytest.raises(ProtocolError) as info:
        decode_client(codec, text, data)
    return info.value


def rejected_value(codec: Codec, value: object) -> ProtocolError:
    return rejected(codec, *frame(codec, value))


# --- negotiation and codecs --------------------------------------------------------------


def test_negotiate() -> None:
    assert negotiate([]) is JSON_CODEC
    assert negotiate(["game.v1.json"]) is JSON_CODEC
    assert negotiate(["game.v1.msgpack"]) is MSGPACK_CODEC
    assert negotiate(["chat", "game.v1.msgpack", "game.v1.json"]) is MSGPACK_CODEC
    assert negotiate(["chat", "game.v2.json"]) is None


def test_codec_frame_kinds() -> None:
    assert isinstance(JSON_CODEC.encode(ServerPing(ts=1)), str)
    assert isinstance(MSGPACK_CODEC.encode(ServerPing(ts=1)), bytes)
    assert JSON_CODEC.frame(ServerPing(ts=1)) == ('{"type":"ping","ts":1}', None)
    text, data = MSGPACK_CODEC.frame(ServerPing(ts=1))
    assert text is None
    assert isinstance(data, bytes)


def test_close_codes() -> None:
    assert {c.name: int(c) for c in CloseCode} == {
        "NORMAL": 1000,
        "GOING_AWAY": 1001,
        "TOO_BIG": 1009,
        "INTERNAL_ERROR": 1011,
        "TRY_AGAIN_LATER": 1013,
        "KICKED": 4000,
        "BAD_MESSAGES": 4400,
        "HEARTBEAT_TIMEOUT": 4408,
        "REPLACED": 4409,
        "OUTBOX_FULL": 4413,
        "RATE_LIMITED": 4429,
    }


CLIENT_MESSAGES = [
    Ack(seq=5),
    Ack(seq=0, id="a"),
    Ping(ts=123),
    Ping(ts=1.5, id=7),
    Pong(ts=99),
    Move(x=0.0, y=10_000.0, id="m-1"),
    Move(x=12.5, y=3.25),
    StateReq(),
    StateReq(id=-3),
]

SERVER_MESSAGES = [
    Welcome(
        session_id="s1", player_id="p1", node="n1", heartbeat_s=15.0, resumed=False, last_seq=0
    ),
    State(seq=1, player_id="p1", x=1.0, y=2.0, rev=0),
    State(seq=2, re="r", player_id="p1", x=1.0, y=2.0, rev=1),
    Ok(seq=3, re=4),
    Error(code=INVALID, message="bad x", re=5, field="x", seq=4),
    Error(code="rate_limited", message="slow down", retry_after_ms=250),
    ServerPing(ts=1.25),
    ServerPong(ts=8, re="p"),
]


@pytest.mark.parametrize("codec", CODECS, ids=lambda c: c.name)
@pytest.mark.parametrize("msg", CLIENT_MESSAGES, ids=repr)
def test_client_round_trip(codec: Codec, msg: ClientMessage) -> None:
    encoded = codec.encode(msg)
    text, data = (encoded, None) if isinstance(encoded, str) else (None, encoded)
    assert decode_client(codec, text, data) == msg


@pytest.mark.parametrize("codec", CODECS, ids=lambda c: c.name)
@pytest.mark.parametrize("msg", SERVER_MESSAGES, ids=repr)
def test_server_round_trip(codec: Codec, msg: msgspec.Struct) -> None:
    encoded = codec.encode(msg)
    text, data = (encoded, None) if isinstance(encoded, str) else (None, encoded)
    assert decode_server(codec, text, data) == msg


def test_wire_shape_omits_none_and_uses_wire_names() -> None:
    assert msgspec.json.decode(JSON_CODEC.encode(State(seq=1, player_id="p", x=1, y=2, rev=0))) == {
        "type": "state",
        "seq": 1,
        "player_id": "p",
        "x": 1,
        "y": 2,
        "rev": 0,
    }
    assert msgspec.json.decode(JSON_CODEC.encode(Error(code="busy", message="m"))) == {
        "type": "error",
        "code": "busy",
        "message": "m",
    }
    assert decode(JSON_CODEC, {"type": "state"}) == StateReq()


def test_ints_accepted_for_floats_and_extra_fields_ignored() -> None:
    msg = decode(JSON_CODEC, {"type": "move", "x": 3, "y": 4, "future": {"a": [1]}})
    assert msg == Move(x=3.0, y=4.0)
    assert isinstance(msg, Move)
    assert isinstance(msg.x, float)


@pytest.mark.parametrize("req_id", [0, 1, -1, 2**63 - 1, "", "a" * 64, "ünï"])
def test_id_echo_types(req_id: int | str) -> None:
    msg = decode(JSON_CODEC, {"type": "state", "id": req_id})
    assert msg.id == req_id
    assert type(msg.id) is type(req_id)


# --- malformed input -----------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        "",
        "{",
        '{"type":"ack","seq":1',
        "[]",
        "[1, 2]",
        "1",
        '"ack"',
        "null",
        '{"type":"move","x":1e400,"y":1}',
        "1e400",
        '{"type":"ack","seq":' + "9" * 5000 + "}",
        "[" * 100_000,
        '{"a":' * 100_000,
        '{"type":"move","x":1,"y":1,"extra":' + "[" * 100_000 + "]" * 100_000 + "}",
        '{"type":"move","x":NaN,"y":1}',
        '{"type":"move","x":Infinity,"y":1}',
    ],
    ids=lambda t: t[:40],
)
def test_bad_message_json(text: str) -> None:
    error = rejected(JSON_CODEC, text, None)
    assert error.code == BAD_MESSAGE
    assert error.re is None


def test_deep_nesting_inside_a_known_message_is_bad_message() -> None:
    deep = '{"id":9,"type":"state","x":' + "[" * 100_000 + "]" * 100_000 + "}"
    assert rejected(JSON_CODEC, deep, None).code == BAD_MESSAGE


DEEP = 100_000
JSON_DEEP = "[" * DEEP + "]" * DEEP


@pytest.mark.parametrize(
    ("text", "re"),
    [
        # Regression: the generic decode failed with RecursionError, so the id was lost.
        pytest.param('{"id":9,"type":"state","x":' + JSON_DEEP + "}", 9, id="id-first"),
        pytest.param('{"type":"state","x":' + JSON_DEEP + ',"id":"r-1"}', "r-1", id="id-last"),
        pytest.param(
            r'{"x":{"a":"}\"id\":1","b":[' + JSON_DEEP + ']} , "id" : -12 }', -12,
            id="strings-and-spaces",
        ),
        pytest.param('{"x":[{"id":5,"y":' + JSON_DEEP + "}]}", None, id="nested-id"),
        pytest.param('{"x":' + JSON_DEEP + ',"note":"id"}', None, id="id-as-value"),
        pytest.param('{"id":[1],"x":' + JSON_DEEP + "}", None, id="id-not-scalar"),
        pytest.param('{"id":true,"x":' + JSON_DEEP + "}", None, id="id-bool"),
        pytest.param('{"id":"' + "i" * 65 + '","x":' + JSON_DEEP + "}", None, id="id-too-long"),
        pytest.param('[{"id":3},' + JSON_DEEP + "]", None, id="not-an-object"),
    ],
)  # fmt: skip
def test_deeply_nested_json_keeps_its_top_level_id(text: str, re: object) -> None:
    error = rejected(JSON_CODEC, text, None)
    assert error.code == BAD_MESSAGE
    assert "too deeply nested" in error.message
    assert error.re == re


def msgpack_map(*pairs: tuple[bytes, bytes]) -> bytes:
    """A msgpack map of already-encoded keys and values (so values can be pathological)."""
    assert len(pairs) < 16
    return bytes([0x80 | len(pairs)]) + b"".join(k + v for k, v in pairs)


MSGPACK_DEEP = b"\x91" * DEEP + b"\xc0"


@pytest.mark.parametrize(
    ("data", "re"),
    [
        (msgpack_map((_msgpack.encode("id"), _msgpack.encode(9)),
                     (_msgpack.encode("type"), _msgpack.encode("state")),
                     (_msgpack.encode("x"), MSGPACK_DEEP)), 9),
        (msgpack_map((_msgpack.encode("type"), _msgpack.encode("state")),
                     (_msgpack.encode("x"), b"\x91" * 2000 + b"\xc0"),
                     (_msgpack.encode("id"), _msgpack.encode("r-1"))), "r-1"),
        (msgpack_map((_msgpack.encode("x"), MSGPACK_DEEP),
                     (_msgpack.encode("id"), _msgpack.encode(9))), None),  # past the budget
        (msgpack_map((_msgpack.encode("id"), b"\x91\x01"),
                     (_msgpack.encode("x"), MSGPACK_DEEP)), None),  # not a scalar
        (b"\x92" + _msgpack.encode({"id": 1}) + MSGPACK_DEEP, None),  # not a map
    ],
    ids=["id-first", "id-after-2000-levels", "id-after-100k-levels", "id-not-scalar", "array"],
)  # fmt: skip
def test_deeply_nested_msgpack_keeps_its_top_level_id(data: bytes, re: object) -> None:
    error = rejected(MSGPACK_CODEC, None, data)
    assert error.code == BAD_MESSAGE
    assert error.re == re


def test_the_id_scan_is_bounded() -> None:
    # Past MAX_SCAN_STEPS tokens the scan gives up: an id behind thousands of tokens is
    # not worth unbounded work on hostile input.
    from gameproto._idscan import MAX_SCAN_STEPS

    steps = "[0," * (MAX_SCAN_STEPS + 1) + "0" + "]" * (MAX_SCAN_STEPS + 1)
    assert rejected(JSON_CODEC, '{"x":' + steps + JSON_DEEP + ',"id":1}', None).re is None
    assert rejected(JSON_CODEC, '{"id":1,"x":' + steps + JSON_DEEP + "}", None).re == 1


@given(st.integers(min_value=-(2**63), max_value=2**63 - 1) | st.text(max_size=64))
@settings(max_examples=50, suppress_health_check=[HealthCheck.too_slow])
def test_any_usable_id_survives_deep_nesting(request_id: int | str) -> None:
    for codec in CODECS:
        if codec.binary:
            data = msgpack_map((_msgpack.encode("x"), b"\x91" * 1500 + b"\xc0"),
                               (_msgpack.encode("id"), _msgpack.encode(request_id)))  # fmt: skip
            assert rejected(codec, None, data).re == request_id
        else:
            text = '{"x":' + JSON_DEEP[:3000] + JSON_DEEP[-3000:]
            text += ',"id":' + _json.encode(request_id).decode() + "}"
            assert rejected(codec, text, None).re == request_id


@pytest.mark.parametrize(
    "data", [b"", b"\xc1", b"\x91\x01", b"\x01", b"\x81\xa4type", b"\x91" * 100_000]
)
def test_bad_message_msgpack(data: bytes) -> None:
    assert rejected(MSGPACK_CODEC, None, data).code == BAD_MESSAGE


def test_wrong_frame_kind() -> None:
    assert rejected(JSON_CODEC, None, b'{"type":"state"}').code == BAD_MESSAGE
    assert rejected(MSGPACK_CODEC, '{"type":"state"}', None).code == BAD_MESSAGE
    assert rejected(JSON_CODEC, None, None).code == BAD_MESSAGE
    assert rejected(MSGPACK_CODEC, "", b"").code == BAD_MESSAGE


@pytest.mark.parametrize("codec", CODECS, ids=lambda c: c.name)
@pytest.mark.parametrize(
    ("value", "field"),
    [
        ({"seq": 1}, "type"),
        ({"type": 1, "id": 4}, "type"),
        ({"type": None}, "type"),
        ({"type": ["ack"]}, "type"),
        ({"type": "ack"}, "seq"),
        ({"type": "ack", "seq": "1"}, "seq"),
        ({"type": "ack", "seq": 1.5}, "seq"),
        ({"type": "ack", "seq": True}, "seq"),
        ({"type": "ack", "seq": -1}, "seq"),
        ({"type": "ping"}, "ts"),
        ({"type": "ping", "ts": "now"}, "ts"),
        ({"type": "move", "x": 1}, "y"),
        ({"type": "move", "x": "1", "y": 2}, "x"),
        ({"type": "move", "x": None, "y": 2}, "x"),
        ({"type": "move", "x": False, "y": 2}, "x"),
        ({"type": "move", "x": 1, "y": [2]}, "y"),
        ({"type": "state", "id": 1.5}, "id"),
        ({"type": "state", "id": True}, "id"),
        ({"type": "state", "id": [1]}, "id"),
        ({"type": "state", "id": {"a": 1}}, "id"),
        ({"type": "state", "id": "a" * 65}, "id"),
        ({"type": "state", "id": 2**63}, "id"),
    ],
)
def test_invalid_fields(codec: Codec, value: dict[str, object], field: str) -> None:
    error = rejected_value(codec, value)
    assert (error.code, error.field) == (INVALID, field)


def test_huge_integer_is_invalid_field() -> None:
    # 10**400 is valid JSON that decodes to a Python int, so the field is at fault...
    error = rejected(JSON_CODEC, '{"type":"move","id":"q","x":' + str(10**400) + ',"y":1}', None)
    assert (error.code, error.field, error.re) == (INVALID, "x", "q")
    error = rejected(JSON_CODEC, '{"type":"ack","seq":' + str(10**400) + "}", None)
    assert (error.code, error.field) == (INVALID, "seq")
    # ...while 1e400 is a number the decoder itself refuses.
    assert rejected(JSON_CODEC, '{"type":"move","id":"q","x":1e400,"y":1}', None).code == (
        BAD_MESSAGE
    )


@pytest.mark.parametrize("codec", CODECS, ids=lambda c: c.name)
@pytest.mark.parametrize("msg_type", ["nope", "", "ACK", "welcome", "x" * 1000])
def test_unknown_type(codec: Codec, msg_type: str) -> None:
    error = rejected_value(codec, {"type": msg_type, "id": "r1"})
    assert (error.code, error.re) == (UNKNOWN_TYPE, "r1")


OUT_OF_RANGE = [(-0.001, 1.0, "x"), (1.0, 10_000.001, "y"), (-1, 5, "x"), (5, 10_001, "y")]
# JSON cannot carry NaN/inf at all (test_bad_message_json); msgpack can.
NON_FINITE = [
    (math.nan, 1.0, "x"),
    (1.0, math.nan, "y"),
    (math.inf, 1.0, "x"),
    (1.0, -math.inf, "y"),
]


@pytest.mark.parametrize(
    ("codec", "x", "y", "field"),
    [(JSON_CODEC, *case) for case in OUT_OF_RANGE]
    + [(MSGPACK_CODEC, *case) for case in OUT_OF_RANGE + NON_FINITE],
)
def test_move_out_of_range(codec: Codec, x: float, y: float, field: str) -> None:
    error = rejected_value(codec, {"type": "move", "x": x, "y": y, "id": 11})
    assert (error.code, error.field, error.re) == (INVALID, field, 11)


def test_move_world_size_override() -> None:
    assert decode(JSON_CODEC, {"type": "move", "x": 500, "y": 0}, world_size=500) == Move(
        x=500.0, y=0.0
    )
    with pytest.raises(ProtocolError) as info:
        decode(JSON_CODEC, {"type": "move", "x": 501, "y": 0}, world_size=500)
    assert info.value.field == "x"


def test_nonfinite_ping_ts_is_invalid_on_msgpack() -> None:
    error = rejected_value(MSGPACK_CODEC, {"type": "ping", "ts": math.nan, "id": "p"})
    assert (error.code, error.field, error.re) == (INVALID, "ts", "p")


@pytest.mark.parametrize("codec", CODECS, ids=lambda c: c.name)
@pytest.mark.parametrize("req_id", [7, "abc", 0, "", "z" * 64])
def test_re_echoes_usable_id_verbatim(codec: Codec, req_id: int | str) -> None:
    for value in (
        {"type": "ack", "seq": "x", "id": req_id},
        {"type": "nope", "id": req_id},
        {"id": req_id},
        {"type": 5, "id": req_id},
    ):
        error = rejected_value(codec, value)
        assert error.re == req_id
        assert type(error.re) is type(req_id)


@pytest.mark.parametrize("codec", CODECS, ids=lambda c: c.name)
@pytest.mark.parametrize("req_id", [1.5, True, None, [1], "a" * 65, 2**63, 2**64 - 1])
def test_unusable_id_is_not_echoed(codec: Codec, req_id: object) -> None:
    assert rejected_value(codec, {"type": "nope", "id": req_id}).re is None


def test_protocol_error_to_error() -> None:
    exc = ProtocolError(INVALID, "bad", field="x", re="r")
    assert exc.to_error(seq=3) == Error(seq=3, code=INVALID, message="bad", field="x", re="r")


# --- registry --------------------------------------------------------------------------


def test_register_message_types() -> None:
    class Chat(ClientMessage, tag="test.chat"):
        text: str

    class ChatPush(protocol.ServerMessage, tag="test.chat"):
        seq: int
        text: str

    before = (list(registry._client_types), list(registry._server_types))
    try:
        assert rejected_value(JSON_CODEC, {"type": "test.chat", "text": "hi"}).code == UNKNOWN_TYPE
        protocol.register_client_message(Chat)
        protocol.register_server_message(ChatPush)
        for codec in CODECS:
            assert decode(codec, {"type": "test.chat", "text": "hi"}) == Chat(text="hi")
            assert rejected_value(codec, {"type": "test.chat"}).field == "text"
            encoded = codec.encode(ChatPush(seq=1, text="yo"))
            text, data = (encoded, None) if isinstance(encoded, str) else (None, encoded)
            assert decode_server(codec, text, data) == ChatPush(seq=1, text="yo")
        protocol.register_client_message(Chat)  # idempotent

        class Clash(ClientMessage, tag="test.chat"):
            pass

        with pytest.raises(ValueError, match="already registered"):
            protocol.register_client_message(Clash)
        with pytest.raises(TypeError):
            protocol.register_client_message(ChatPush)  # type: ignore[arg-type]
    finally:
        registry._client_types[:] = before[0]
        registry._server_types[:] = before[1]
        for rebuild in registry._listeners:
            rebuild()
    assert rejected_value(JSON_CODEC, {"type": "test.chat", "text": "hi"}).code == UNKNOWN_TYPE


# --- server side decode (SDK) --------------------------------------------------------


def test_decode_server_unknown_type_and_peek_seq() -> None:
    text = '{"type":"room.joined","seq":12,"room":"r"}'
    with pytest.raises(ProtocolError) as info:
        decode_server(JSON_CODEC, text, None)
    assert info.value.code == UNKNOWN_TYPE
    assert peek_seq(JSON_CODEC, text, None) == 12
    assert peek_seq(JSON_CODEC, '{"seq":true}', None) is None
    assert peek_seq(JSON_CODEC, "garbage", None) is None
    with pytest.raises(ProtocolError) as info:
        decode_server(JSON_CODEC, "garbage", None)
    assert info.value.code == BAD_MESSAGE
    with pytest.raises(ProtocolError) as info:
        decode_server(JSON_CODEC, '{"type":"state","seq":"x"}', None)
    assert (info.value.code, info.value.field) == (INVALID, "seq")


# --- fuzz ----------------------------------------------------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=80),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)
message_like = st.fixed_dictionaries(
    {},
    optional={
        "type": st.sampled_from(["ack", "ping", "pong", "move", "state", "x"]) | json_values,
        "id": json_values,
        "seq": json_values,
        "ts": json_values,
        "x": json_values | st.floats(),
        "y": json_values | st.floats(),
    },
)


def _check(codec: Codec, text: str | None, data: bytes | None) -> None:
    error: ProtocolError | None = None
    try:
        msg = decode_client(codec, text, data)
    except ProtocolError as exc:  # anything else propagates and fails the test
        error = exc
    else:
        assert isinstance(msg, ClientMessage)
    if error is not None:
        assert error.code in {BAD_MESSAGE, UNKNOWN_TYPE, INVALID}
        assert error.re is None or isinstance(error.re, int | str)


FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(value=message_like | json_values)
def test_fuzz_structured(value: object) -> None:
    for codec in CODECS:
        try:
            text, data = frame(codec, value)
        except (OverflowError, msgspec.EncodeError):
            continue  # msgpack cannot carry ints beyond 64 bits
        _check(codec, text, data)


@FUZZ
@given(text=st.text(max_size=200))
def test_fuzz_text(text: str) -> None:
    _check(JSON_CODEC, text, None)


@FUZZ
@given(data=st.binary(max_size=200))
def test_fuzz_bytes(data: bytes) -> None:
    _check(MSGPACK_CODEC, None, data)
    _check(JSON_CODEC, None, data)

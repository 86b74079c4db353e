"""The game WebSocket wire contract: message schemas and the two codecs.

This is the one place the protocol is defined; the gateway consumer and the `gameclient`
SDK both import it, so it must stay free of Django imports. docs/PROTOCOL.md is the prose
version of the same contract.

Hot path: `decode_client` does a single typed msgspec decode; only when that fails is the
frame decoded a second time, generically, to classify the error and recover the request
`id`. Encoders/decoders are built once and reused.
"""

from __future__ import annotations

import enum
import math
import re as _re
from collections.abc import Sequence
from typing import Annotated, Any, Final, Union

import msgspec

__all__ = [
    "ALL_CODECS",
    "BAD_MESSAGE",
    "BUSY",
    "CIRCUIT_OPEN",
    "DEFAULT_CODEC",
    "DEFAULT_WORLD_SIZE",
    "ERROR_CODES",
    "INTERNAL",
    "INVALID",
    "JSON_CODEC",
    "MAX_ID_LENGTH",
    "MSGPACK_CODEC",
    "RATE_LIMITED",
    "UNKNOWN_TYPE",
    "Ack",
    "ClientMessage",
    "CloseCode",
    "Codec",
    "Error",
    "Move",
    "Ok",
    "Ping",
    "Pong",
    "ProtocolError",
    "RequestId",
    "ServerMessage",
    "ServerPing",
    "ServerPong",
    "State",
    "StateReq",
    "Welcome",
    "decode_client",
    "decode_generic",
    "decode_server",
    "negotiate",
    "peek_seq",
    "register_client_message",
    "register_server_message",
    "validate_client",
]

# --- limits --------------------------------------------------------------------------

# Request ids are echoed verbatim; a bound keeps replies small and log lines sane.
MAX_ID_LENGTH: Final = 64
# Ints on the wire are bounded to int64 so every value we accept can be re-encoded by
# both codecs (msgpack cannot carry integers beyond 64 bits) and by JS clients' BigInt.
INT64_MIN: Final = -(2**63)
INT64_MAX: Final = 2**63 - 1
# Default GAME_WORLD_SIZE: move coordinates must lie in [0, world_size].
DEFAULT_WORLD_SIZE: Final = 10_000.0

# --- error and close codes -----------------------------------------------------------

BAD_MESSAGE: Final = "bad_message"
UNKNOWN_TYPE: Final = "unknown_type"
INVALID: Final = "invalid"
RATE_LIMITED: Final = "rate_limited"
BUSY: Final = "busy"
INTERNAL: Final = "internal"
CIRCUIT_OPEN: Final = "circuit_open"
ERROR_CODES: Final = frozenset(
    {BAD_MESSAGE, UNKNOWN_TYPE, INVALID, RATE_LIMITED, BUSY, INTERNAL, CIRCUIT_OPEN}
)


class CloseCode(enum.IntEnum):
    NORMAL = 1000  # client ends the session; not resumable
    GOING_AWAY = 1001  # server shutting down; resumable
    TOO_BIG = 1009  # frame over GAME_MAX_MESSAGE_BYTES
    INTERNAL_ERROR = 1011  # the server could not set the session up; retry
    BAD_MESSAGES = 4400  # too many bad_message/invalid/unknown_type errors
    HEARTBEAT_TIMEOUT = 4408  # pings unanswered; resumable
    REPLACED = 4409  # a newer connection of the same player took over
    OUTBOX_FULL = 4413  # too many un-acked messages; not resumable
    RATE_LIMITED = 4429  # rate-limit abuse


class ProtocolError(Exception):
    """A client frame the server must answer with `error {code, message, field?, re?}`."""

    def __init__(
        self,
        code: str,
        message: str,
        field: str | None = None,
        re: int | str | None = None,
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.field = field
        self.re = re

    def to_error(self, seq: int | None = None) -> Error:
        return Error(seq=seq, code=self.code, message=self.message, field=self.field, re=self.re)


# --- schemas ---------------------------------------------------------------------------

Int64 = Annotated[int, msgspec.Meta(ge=INT64_MIN, le=INT64_MAX)]
Seq = Annotated[int, msgspec.Meta(ge=0, le=INT64_MAX)]
RequestId = Int64 | Annotated[str, msgspec.Meta(max_length=MAX_ID_LENGTH)] | None
# Timestamps are opaque to the receiver and echoed back, so both int and float are fine.
Timestamp = Int64 | float


class ClientMessage(msgspec.Struct, tag_field="type", kw_only=True, omit_defaults=True):
    """Base of every client->server message; `id` makes it a request.

    `ack` piggybacks a cumulative acknowledgement on any message, so a client that sends
    requests needs no separate `ack` frames (half the inbound frames at low rates).
    """

    id: RequestId = None
    ack: Seq | None = None


class ServerMessage(msgspec.Struct, tag_field="type", kw_only=True, omit_defaults=True):
    """Base of every server->client message."""


class Ack(ClientMessage, tag="ack"):
    seq: Seq


class Ping(ClientMessage, tag="ping"):
    ts: Timestamp


class Pong(ClientMessage, tag="pong"):
    ts: Timestamp


class Move(ClientMessage, tag="move"):
    x: float
    y: float


class StateReq(ClientMessage, tag="state"):
    pass


class Welcome(ServerMessage, tag="welcome"):
    session_id: str
    player_id: str
    node: str
    heartbeat_s: float
    resumed: bool
    last_seq: Seq


class State(ServerMessage, tag="state"):
    seq: Seq
    player_id: str
    x: float
    y: float
    rev: int
    re: RequestId = None


class Ok(ServerMessage, tag="ok"):
    seq: Seq
    re: RequestId = None


class Error(ServerMessage, tag="error"):
    code: str
    message: str
    seq: Seq | None = None
    re: RequestId = None
    field: str | None = None
    retry_after_ms: int | None = None


class ServerPing(ServerMessage, tag="ping"):
    ts: Timestamp


class ServerPong(ServerMessage, tag="pong"):
    ts: Timestamp
    re: RequestId = None  # answers a client `ping` that carried an `id`


# --- registry ------------------------------------------------------------------------

_client_types: list[type[ClientMessage]] = [Ack, Ping, Pong, Move, StateReq]
_server_types: list[type[ServerMessage]] = [
    Welcome,
    State,
    Ok,
    Error,
    ServerPing,
    ServerPong,
]
_client_tags: frozenset[str] = frozenset()
_server_tags: frozenset[str] = frozenset()


def _tag(cls: type[msgspec.Struct]) -> str:
    tag = cls.__struct_config__.tag
    if not isinstance(tag, str):
        raise TypeError(f"{cls.__name__} needs a string tag (class kwarg tag=...)")
    return tag


def _register(registry: list[Any], base: type[msgspec.Struct], cls: type[Any]) -> None:
    if not issubclass(cls, base):
        raise TypeError(f"{cls.__name__} must subclass {base.__name__}")
    tag = _tag(cls)
    if cls in registry:
        return
    if any(_tag(existing) == tag for existing in registry):
        raise ValueError(f"message type {tag!r} is already registered")
    registry.append(cls)
    _rebuild_decoders()


def register_client_message(cls: type[ClientMessage]) -> type[ClientMessage]:
    """Add a client->server message type (usable as a class decorator)."""
    _register(_client_types, ClientMessage, cls)
    return cls


def register_server_message(cls: type[ServerMessage]) -> type[ServerMessage]:
    """Add a server->client message type (usable as a class decorator)."""
    _register(_server_types, ServerMessage, cls)
    return cls


# --- codecs --------------------------------------------------------------------------


class Codec:
    """One negotiated subprotocol: how messages become WebSocket frames."""

    def __init__(self, name: str, *, binary: bool) -> None:
        self.name = name
        self.binary = binary  # True: binary frames (bytes); False: text frames (str)
        # Decoders are Any-typed: msgspec's stubs differ per format on str input.
        self._generic: Any
        if binary:
            self._msgpack_encoder = msgspec.msgpack.Encoder()
            self._generic = msgspec.msgpack.Decoder()
        else:
            self._json_encoder = msgspec.json.Encoder()
            self._generic = msgspec.json.Decoder()
        self._client: Any = None  # typed decoders, rebuilt when the registry changes
        self._server: Any = None
        self._build()

    def _build(self) -> None:
        client_union = Union[tuple(_client_types)]  # type: ignore[valid-type]  # noqa: UP007
        server_union = Union[tuple(_server_types)]  # type: ignore[valid-type]  # noqa: UP007
        if self.binary:
            self._client = msgspec.msgpack.Decoder(client_union)
            self._server = msgspec.msgpack.Decoder(server_union)
        else:
            self._client = msgspec.json.Decoder(client_union)
            self._server = msgspec.json.Decoder(server_union)

    def encode(self, msg: msgspec.Struct) -> str | bytes:
        """Encode a message into the payload of one frame (str for text, bytes for binary)."""
        if self.binary:
            return self._msgpack_encoder.encode(msg)
        return self._json_encoder.encode(msg).decode()

    def frame(self, msg: msgspec.Struct) -> tuple[str | None, bytes | None]:
        """`(text, data)` for APIs that take both, e.g. Channels' send(text_data, bytes_data)."""
        if self.binary:
            return None, self._msgpack_encoder.encode(msg)
        return self._json_encoder.encode(msg).decode(), None

    def __repr__(self) -> str:
        return f"Codec({self.name!r})"


JSON_CODEC: Final = Codec("game.v1.json", binary=False)
MSGPACK_CODEC: Final = Codec("game.v1.msgpack", binary=True)
DEFAULT_CODEC: Final = JSON_CODEC
ALL_CODECS: Final = (JSON_CODEC, MSGPACK_CODEC)
_BY_NAME: Final = {codec.name: codec for codec in ALL_CODECS}


def _rebuild_decoders() -> None:
    global _client_tags, _server_tags
    _client_tags = frozenset(_tag(cls) for cls in _client_types)
    _server_tags = frozenset(_tag(cls) for cls in _server_types)
    for codec in ALL_CODECS:
        codec._build()


_rebuild_decoders()


def negotiate(offered_subprotocols: Sequence[str]) -> Codec | None:
    """The codec for the client's offered subprotocols, in the client's preference order.

    None offered -> JSON (the default). Offers that name none we speak -> None: the
    server should refuse the upgrade rather than guess.
    """
    if not offered_subprotocols:
        return DEFAULT_CODEC
    for name in offered_subprotocols:
        codec = _BY_NAME.get(name)
        if codec is not None:
            return codec
    return None


# --- decoding ------------------------------------------------------------------------

# msgspec puts the failing location at the end: "... - at `$.x`" / "... - at `$.x[0]`".
_PATH_RE: Final = _re.compile(r" - at `\$\.([^`.\[]+)")
_MISSING_RE: Final = _re.compile(r"missing required field `([^`]+)`")
# Everything msgspec (or the interpreter, for pathological nesting) raises on bad input.
_DECODE_FAILURES: Final = (msgspec.MsgspecError, RecursionError, ValueError, TypeError)


def _frame_payload(codec: Codec, text: str | None, data: bytes | None) -> str | bytes:
    if codec.binary:
        if data is None or text is not None:
            raise ProtocolError(BAD_MESSAGE, f"{codec.name} expects binary frames")
        return data
    if text is None or data is not None:
        raise ProtocolError(BAD_MESSAGE, f"{codec.name} expects text frames")
    return text


def _usable_id(value: Any) -> int | str | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int) and INT64_MIN <= value <= INT64_MAX:
        return value
    if isinstance(value, str) and len(value) <= MAX_ID_LENGTH:
        return value
    return None


def _field_of(error_text: str) -> str | None:
    match = _PATH_RE.search(error_text) or _MISSING_RE.search(error_text)
    return match.group(1) if match else None


def _classify(codec: Codec, payload: str | bytes, typed_error: Exception) -> ProtocolError:
    """Turn a failed typed decode into the right ProtocolError (the slow, error-only path)."""
    try:
        value = codec._generic.decode(payload)
    except _DECODE_FAILURES as exc:
        reason = "too deeply nested" if isinstance(exc, RecursionError) else str(exc)
        return ProtocolError(BAD_MESSAGE, f"undecodable frame: {reason}")
    if not isinstance(value, dict):
        return ProtocolError(BAD_MESSAGE, "a message must be an object")
    re = _usable_id(value.get("id"))
    if "type" not in value:
        return ProtocolError(INVALID, "missing field `type`", field="type", re=re)
    msg_type = value["type"]
    if not isinstance(msg_type, str):
        return ProtocolError(INVALID, "`type` must be a string", field="type", re=re)
    if msg_type not in _client_tags:
        return ProtocolError(UNKNOWN_TYPE, f"unknown message type {msg_type[:64]!r}", re=re)
    if isinstance(typed_error, msgspec.ValidationError):
        text = str(typed_error)
        return ProtocolError(INVALID, text, field=_field_of(text), re=re)
    return ProtocolError(BAD_MESSAGE, "undecodable frame", re=re)


def validate_client(msg: ClientMessage, *, world_size: float = DEFAULT_WORLD_SIZE) -> None:
    """Semantic checks beyond the schema (which the decoder already enforced)."""
    if isinstance(msg, Move):
        for name, value in (("x", msg.x), ("y", msg.y)):
            if not math.isfinite(value) or not 0.0 <= value <= world_size:
                raise ProtocolError(
                    INVALID,
                    f"`{name}` must be a finite number in 0..{world_size:g}",
                    field=name,
                    re=msg.id,
                )
    elif isinstance(msg, (Ping, Pong)) and isinstance(msg.ts, float) and not math.isfinite(msg.ts):
        raise ProtocolError(INVALID, "`ts` must be finite", field="ts", re=msg.id)


def decode_client(
    codec: Codec,
    text: str | None,
    data: bytes | None,
    *,
    world_size: float = DEFAULT_WORLD_SIZE,
) -> ClientMessage:
    """Decode and validate one client frame; raises only ProtocolError.

    Pass the frame as received: `text` for a text frame, `data` for a binary one.
    """
    payload = _frame_payload(codec, text, data)
    try:
        msg: ClientMessage = codec._client.decode(payload)
    except _DECODE_FAILURES as exc:
        raise _classify(codec, payload, exc) from None
    validate_client(msg, world_size=world_size)
    return msg


def decode_server(codec: Codec, text: str | None, data: bytes | None) -> ServerMessage:
    """Decode one server frame (the SDK side); raises only ProtocolError.

    An unknown `type` raises ProtocolError(UNKNOWN_TYPE); use `peek_seq` to still ack and
    dedupe such a frame, so an older client survives a newer server's message types.
    """
    payload = _frame_payload(codec, text, data)
    try:
        msg: ServerMessage = codec._server.decode(payload)
    except _DECODE_FAILURES as exc:
        try:
            value = codec._generic.decode(payload)
        except _DECODE_FAILURES:
            raise ProtocolError(BAD_MESSAGE, "undecodable frame") from None
        msg_type = value.get("type") if isinstance(value, dict) else None
        if isinstance(msg_type, str) and msg_type not in _server_tags:
            raise ProtocolError(UNKNOWN_TYPE, f"unknown type {msg_type[:64]!r}") from None
        raise ProtocolError(INVALID, str(exc), field=_field_of(str(exc))) from None
    return msg


def decode_generic(codec: Codec, text: str | None, data: bytes | None) -> Any:
    """Decode a frame to plain Python values (no schema); raises ProtocolError(BAD_MESSAGE)."""
    payload = _frame_payload(codec, text, data)
    try:
        return codec._generic.decode(payload)
    except _DECODE_FAILURES:
        raise ProtocolError(BAD_MESSAGE, "undecodable frame") from None


def peek_seq(codec: Codec, text: str | None, data: bytes | None) -> int | None:
    """The `seq` of a frame that did not decode as a known message, if it has a sane one."""
    try:
        value = decode_generic(codec, text, data)
    except ProtocolError:
        return None
    seq = value.get("seq") if isinstance(value, dict) else None
    if isinstance(seq, int) and not isinstance(seq, bool) and 0 < seq <= INT64_MAX:
        return seq
    return None

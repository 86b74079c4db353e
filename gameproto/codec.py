"""The two codecs (JSON text frames, msgpack binary frames) and validated decoding.

Hot path: `decode_client` does a single typed msgspec decode; only when that fails is the
frame decoded a second time, generically, to classify the error and recover the request
`id`. Encoders/decoders are built once and rebuilt only when a message type is registered.
"""

from __future__ import annotations

import math
import re as _re
from collections.abc import Sequence
from typing import Any, Final, Union

import msgspec

from gameproto._idscan import NOT_FOUND, json_top_level_id, msgpack_top_level_id
from gameproto.codes import (
    BAD_MESSAGE,
    DEFAULT_WORLD_SIZE,
    INT64_MAX,
    INT64_MIN,
    INVALID,
    MAX_ID_LENGTH,
    UNKNOWN_TYPE,
)
from gameproto.messages import (
    ClientMessage,
    Move,
    Ping,
    Pong,
    ProtocolError,
    ServerMessage,
    client_types,
    message_tag,
    on_registry_change,
    server_types,
)

__all__ = [
    "ALL_CODECS",
    "DEFAULT_CODEC",
    "JSON_CODEC",
    "MSGPACK_CODEC",
    "SUBPROTOCOLS",
    "Codec",
    "decode_client",
    "decode_generic",
    "decode_server",
    "negotiate",
    "peek_seq",
    "validate_client",
]


class Codec:
    """One negotiated subprotocol: how messages become WebSocket frames."""

    def __init__(self, name: str, *, binary: bool) -> None:
        self.name = name
        self.binary = binary  # True: binary frames (bytes); False: text frames (str)
        # Decoders are Any-typed: msgspec's stubs differ per format on str input.
        self.generic: Any
        if binary:
            self._msgpack_encoder = msgspec.msgpack.Encoder()
            self.generic = msgspec.msgpack.Decoder()
        else:
            self._json_encoder = msgspec.json.Encoder()
            self.generic = msgspec.json.Decoder()
        self.client: Any = None  # typed decoders, rebuilt when the registry changes
        self.server: Any = None
        self.build()

    def build(self) -> None:
        """(Re)build the typed decoders from the registered message types."""
        client_union = Union[client_types()]  # type: ignore[valid-type]  # noqa: UP007
        server_union = Union[server_types()]  # type: ignore[valid-type]  # noqa: UP007
        if self.binary:
            self.client = msgspec.msgpack.Decoder(client_union)
            self.server = msgspec.msgpack.Decoder(server_union)
        else:
            self.client = msgspec.json.Decoder(client_union)
            self.server = msgspec.json.Decoder(server_union)

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
# The WebSocket subprotocols the server speaks, one per codec.
SUBPROTOCOLS: Final = tuple(_BY_NAME)
_client_tags: frozenset[str] = frozenset()
_server_tags: frozenset[str] = frozenset()


def _rebuild() -> None:
    global _client_tags, _server_tags
    _client_tags = frozenset(message_tag(cls) for cls in client_types())
    _server_tags = frozenset(message_tag(cls) for cls in server_types())
    for codec in ALL_CODECS:
        codec.build()


_rebuild()
on_registry_change(_rebuild)


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


# msgspec puts the failing location at the end: "... - at `$.x`" / "... - at `$.x[0]`" /
# "... - at `$.create.tick_rate`"; a nested field is named by its dotted path.
_PATH_RE: Final = _re.compile(r" - at `\$\.([^`\[]+)")
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
        value = codec.generic.decode(payload)
    except RecursionError:
        # Nothing was decoded; find a top-level `id` by a bounded, non-recursive scan.
        if isinstance(payload, str):
            found = json_top_level_id(payload)
        else:
            found = msgpack_top_level_id(payload)
        re = None if found is NOT_FOUND else _usable_id(found)
        return ProtocolError(BAD_MESSAGE, "undecodable frame: too deeply nested", re=re)
    except _DECODE_FAILURES as exc:
        return ProtocolError(BAD_MESSAGE, f"undecodable frame: {exc}")
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
        msg: ClientMessage = codec.client.decode(payload)
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
        msg: ServerMessage = codec.server.decode(payload)
    except _DECODE_FAILURES as exc:
        try:
            value = codec.generic.decode(payload)
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
        return codec.generic.decode(payload)
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

"""Wire format for messages that cross nodes: msgpack via msgspec.

A message is either a registered msgspec Struct (sent with its registered type name and
decoded back into that type) or plain JSON-like data (dict, list, str, int, float, bool,
None; tuples arrive as lists). Anything else is refused at send time, not on the far side.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final, TypeVar, overload

import msgspec

from ._pid import PID

T = TypeVar("T", bound=type[msgspec.Struct])

_PLAIN_TYPES: Final = frozenset({dict, list, tuple, str, int, float, bool, type(None)})

_names_by_type: dict[type, str] = {}
_decoders: dict[str, msgspec.msgpack.Decoder[Any]] = {}
_encoder = msgspec.msgpack.Encoder()
_plain_decoder: msgspec.msgpack.Decoder[Any] = msgspec.msgpack.Decoder()

# Wire kinds
TELL: Final = 0
ASK: Final = 1
REPLY: Final = 2
ERROR: Final = 3

_NIL: Final = msgspec.Raw(b"\xc0")  # msgpack nil


@overload
def register_message(cls: T, *, name: str | None = None) -> T: ...
@overload
def register_message(cls: None = None, *, name: str | None = None) -> Callable[[T], T]: ...
def register_message(cls: T | None = None, *, name: str | None = None) -> T | Callable[[T], T]:
    """Allow a msgspec Struct type to cross nodes. Usable as `@register_message` or
    `register_message(Move, name="game.Move")`. Both nodes must register the same name."""

    def register(kind: T) -> T:
        if not (isinstance(kind, type) and issubclass(kind, msgspec.Struct)):
            raise TypeError(f"register_message needs a msgspec.Struct subclass, got {kind!r}")
        type_name = name or f"{kind.__module__}.{kind.__qualname__}"
        known = _decoders.get(type_name)
        if known is not None and _names_by_type.get(kind) != type_name:
            raise ValueError(f"message type name {type_name!r} is already registered")
        _names_by_type[kind] = type_name
        _decoders[type_name] = msgspec.msgpack.Decoder(kind)
        return kind

    if cls is None:
        return register
    return register(cls)


def registered_name(kind: type) -> str | None:
    return _names_by_type.get(kind)


def encode_message(msg: Any) -> tuple[str, msgspec.Raw]:
    """(type name or "" for plain data, msgpack bytes); TypeError if it cannot cross nodes."""
    kind = type(msg)
    type_name = _names_by_type.get(kind)
    if type_name is None:
        if kind not in _PLAIN_TYPES:
            raise TypeError(
                f"{kind.__qualname__} cannot be sent to another node: register it with "
                "actors.register_message (msgspec Structs) or send plain JSON-like data"
            )
        type_name = ""
    try:
        return type_name, msgspec.Raw(_encoder.encode(msg))
    except (TypeError, msgspec.EncodeError) as exc:
        raise TypeError(f"cannot serialise {kind.__qualname__} for another node: {exc}") from exc


def decode_message(type_name: str, body: msgspec.Raw | bytes) -> Any:
    if not type_name:
        return _plain_decoder.decode(body)
    decoder = _decoders.get(type_name)
    if decoder is None:
        raise TypeError(f"unknown message type {type_name!r}: register it on this node too")
    return decoder.decode(body)


class Wire(msgspec.Struct, array_like=True, omit_defaults=True, gc=False):
    """One message between nodes; array-like keeps the envelope a few bytes long."""

    kind: int
    target: str = ""  # actor id on the receiving node (tell/ask)
    type: str = ""  # registered type name of `body`, "" for plain data
    body: msgspec.Raw = _NIL
    corr: int = 0  # ask correlation id, echoed by the reply
    reply_to: str = ""  # channel for the reply
    sender: str = ""  # str(PID) of the sender, when known


_wire_decoder = msgspec.msgpack.Decoder(Wire)


def encode_wire(wire: Wire) -> bytes:
    return _encoder.encode(wire)


def decode_wire(data: bytes) -> Wire:
    return _wire_decoder.decode(data)


def encode_error(exc: BaseException) -> msgspec.Raw:
    return msgspec.Raw(_encoder.encode([type(exc).__name__, str(exc)]))


register_message(PID, name="actors.PID")

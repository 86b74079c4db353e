"""Message schemas of the game wire contract, and the registry of message types.

Every message is a msgspec Struct tagged by its `type` field. Client->server messages
derive from `ClientMessage`, server->client ones from `ServerMessage`. docs/PROTOCOL.md is
the prose version of the same contract.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

import msgspec

from gameproto.codes import INT64_MAX, INT64_MIN, MAX_ID_LENGTH

__all__ = [
    "Ack",
    "ClientMessage",
    "Error",
    "Int64",
    "Move",
    "Ok",
    "Ping",
    "Pong",
    "ProtocolError",
    "RequestId",
    "Seq",
    "ServerMessage",
    "ServerPing",
    "ServerPong",
    "State",
    "StateReq",
    "Timestamp",
    "Welcome",
    "client_types",
    "message_tag",
    "on_registry_change",
    "register_client_message",
    "register_server_message",
    "server_types",
]

Int64 = Annotated[int, msgspec.Meta(ge=INT64_MIN, le=INT64_MAX)]
Seq = Annotated[int, msgspec.Meta(ge=0, le=INT64_MAX)]
RequestId = Int64 | Annotated[str, msgspec.Meta(max_length=MAX_ID_LENGTH)] | None
# Timestamps are opaque to the receiver and echoed back, so both int and float are fine.
Timestamp = Int64 | float


# Messages are plain data (decoded frames hold no cycles), so they are not tracked by the
# cycle collector (gc=False, inherited by every message): a node has thousands in flight
# (requests, replies kept for resume until acked), and each tracked one lengthens the
# collector's pauses, which set the latency tail (docs/BENCHMARKS.md, *Garbage collector*).
class ClientMessage(msgspec.Struct, tag_field="type", kw_only=True, omit_defaults=True, gc=False):
    """Base of every client->server message; `id` makes it a request.

    `ack` piggybacks a cumulative acknowledgement on any message, so a client that sends
    requests needs no separate `ack` frames (half the inbound frames at low rates).
    """

    id: RequestId = None
    ack: Seq | None = None


class ServerMessage(msgspec.Struct, tag_field="type", kw_only=True, omit_defaults=True, gc=False):
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
    # Resumed from the shared session store on a node other than the one that served the
    # session last (it died, restarted or handed it over): replies to requests sent
    # before this welcome that are not replayed up to `last_seq` will never come.
    restored: bool = False


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


class Notice(ServerMessage, tag="notice"):
    """A system message from an operator, on the reliable stream like every server message."""

    seq: Seq
    text: str


class ServerPing(ServerMessage, tag="ping"):
    ts: Timestamp


class ServerPong(ServerMessage, tag="pong"):
    ts: Timestamp
    re: RequestId = None  # answers a client `ping` that carried an `id`


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


# --- registry ------------------------------------------------------------------------

_client_types: list[type[ClientMessage]] = [Ack, Ping, Pong, Move, StateReq]
_server_types: list[type[ServerMessage]] = [
    Welcome, State, Ok, Error, Notice, ServerPing, ServerPong,
]  # fmt: skip
# Called after every registration (the codecs rebuild their typed decoders).
_listeners: list[Callable[[], None]] = []


def message_tag(cls: type[msgspec.Struct]) -> str:
    """The wire `type` of a message class."""
    tag = cls.__struct_config__.tag
    if not isinstance(tag, str):
        raise TypeError(f"{cls.__name__} needs a string tag (class kwarg tag=...)")
    return tag


def client_types() -> tuple[type[ClientMessage], ...]:
    return tuple(_client_types)


def server_types() -> tuple[type[ServerMessage], ...]:
    return tuple(_server_types)


def on_registry_change(listener: Callable[[], None]) -> None:
    _listeners.append(listener)


def _register(registry: list[Any], base: type[msgspec.Struct], cls: type[Any]) -> None:
    if not issubclass(cls, base):
        raise TypeError(f"{cls.__name__} must subclass {base.__name__}")
    tag = message_tag(cls)
    if cls in registry:
        return
    if any(message_tag(existing) == tag for existing in registry):
        raise ValueError(f"message type {tag!r} is already registered")
    registry.append(cls)
    for listener in _listeners:
        listener()


def register_client_message(cls: type[ClientMessage]) -> type[ClientMessage]:
    """Add a client->server message type (usable as a class decorator)."""
    _register(_client_types, ClientMessage, cls)
    return cls


def register_server_message(cls: type[ServerMessage]) -> type[ServerMessage]:
    """Add a server->client message type (usable as a class decorator)."""
    _register(_server_types, ServerMessage, cls)
    return cls

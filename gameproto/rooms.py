"""Rooms and lockstep battles: the room messages of the wire contract (docs/PROTOCOL.md).

Client -> server: ``join``, ``leave``, ``input``, ``sync``, ``hash``, ``chat``.
Server -> client: ``joined``, ``member_joined``, ``member_left``, ``frame``, ``frames``,
``desync``, ``chat``. Range checks that need no room state live in the schemas (so a bad
frame is answered ``invalid`` at the edge, with ``field`` naming it, e.g.
``create.tick_rate``); the room checks the rest (membership, how far ahead a tick is).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, Final, Literal

import msgspec

from gameproto.codes import INT64_MAX
from gameproto.messages import (
    ClientMessage,
    RequestId,
    Seq,
    ServerMessage,
    register_client_message,
    register_server_message,
)

__all__ = [
    "DEFAULT_INPUT_DELAY",
    "DEFAULT_LATE_POLICY",
    "DEFAULT_MAX_PLAYERS",
    "DEFAULT_TICK_RATE",
    "DIGEST_MAX",
    "KEYS_MAX",
    "LATE_POLICIES",
    "MAX_CHAT_CHARS",
    "MAX_INPUT_AHEAD",
    "MAX_INPUT_DELAY",
    "MAX_PLAYERS_LIMIT",
    "MAX_TICK_RATE",
    "ROOM_HISTORY",
    "ROOM_ID_PATTERN",
    "Chat",
    "ChatMessage",
    "Desync",
    "Frame",
    "FrameEntry",
    "Frames",
    "Hash",
    "Input",
    "Join",
    "Joined",
    "LatePolicy",
    "Leave",
    "MemberJoined",
    "MemberLeft",
    "RoomCreate",
    "RoomSnapshot",
    "Sync",
]

ROOM_ID_PATTERN: Final = r"^[A-Za-z0-9_.:-]{1,64}$"
MAX_TICK_RATE: Final = 60
DEFAULT_TICK_RATE: Final = 20
MAX_PLAYERS_LIMIT: Final = 64
DEFAULT_MAX_PLAYERS: Final = 16
MAX_INPUT_DELAY: Final = 10
DEFAULT_INPUT_DELAY: Final = 2
LATE_POLICIES: Final = ("shift", "drop")
DEFAULT_LATE_POLICY: Final = "shift"
# Closed frames a room keeps in memory (``sync`` reaches back this far), and how far past
# the room's next tick an input may be aimed.
ROOM_HISTORY: Final = 128
MAX_INPUT_AHEAD: Final = 128
KEYS_MAX: Final = 0xFFFF
MAX_CHAT_CHARS: Final = 256
# Digests are 63-bit so that they are non-negative in every language's int64.
DIGEST_MAX: Final = 2**63 - 1
MAX_SIM_NAME: Final = 64

RoomId = Annotated[str, msgspec.Meta(pattern=ROOM_ID_PATTERN)]
Tick = Annotated[int, msgspec.Meta(ge=0, le=INT64_MAX)]
Keys = Annotated[int, msgspec.Meta(ge=0, le=KEYS_MAX)]
Digest = Annotated[int, msgspec.Meta(ge=0, le=DIGEST_MAX)]
LatePolicy = Literal["shift", "drop"]


class RoomCreate(msgspec.Struct, kw_only=True, omit_defaults=True):
    """Options for a room the join creates; ignored when the room exists already."""

    tick_rate: Annotated[int, msgspec.Meta(ge=1, le=MAX_TICK_RATE)] = DEFAULT_TICK_RATE
    max_players: Annotated[int, msgspec.Meta(ge=1, le=MAX_PLAYERS_LIMIT)] = DEFAULT_MAX_PLAYERS
    input_delay: Annotated[int, msgspec.Meta(ge=0, le=MAX_INPUT_DELAY)] = DEFAULT_INPUT_DELAY
    late_policy: LatePolicy = DEFAULT_LATE_POLICY
    sim: Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_SIM_NAME)] | None = None


# --- client -> server ------------------------------------------------------------------


class Join(ClientMessage, tag="join"):
    room: RoomId
    create: RoomCreate | None = None


class Leave(ClientMessage, tag="leave"):
    room: RoomId


class Input(ClientMessage, tag="input"):
    room: RoomId
    tick: Tick
    keys: Keys


class Sync(ClientMessage, tag="sync"):
    room: RoomId
    from_tick: Tick


class Hash(ClientMessage, tag="hash"):
    room: RoomId
    tick: Tick
    h: Digest


class Chat(ClientMessage, tag="chat"):
    room: RoomId
    # Counted in Unicode code points (msgspec's str length), as the contract says.
    text: Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_CHAT_CHARS)]


# --- server -> client ------------------------------------------------------------------

# One frame's inputs: ``[[player_id, keys], ...]`` sorted by player id. (A Sequence: the
# server keeps frames as tuples, which the garbage collector need not track; decoded
# frames are lists.)
FrameInputs = Sequence[tuple[str, int]]


class RoomSnapshot(msgspec.Struct, kw_only=True):
    """A simulation's state after closing ``tick - 1``: a late joiner starts from it."""

    tick: int
    data: dict[str, Any]


class Joined(ServerMessage, tag="joined"):
    seq: Seq
    room: str
    tick_rate: int
    tick: int  # the next tick the room closes: no frame before it reaches this player
    input_delay: int
    late_policy: str
    max_players: int
    members: list[str]
    sim: str | None = None
    state: RoomSnapshot | None = None
    re: RequestId = None


class MemberJoined(ServerMessage, tag="member_joined"):
    seq: Seq
    room: str
    player_id: str
    tick: int


class MemberLeft(ServerMessage, tag="member_left"):
    seq: Seq
    room: str
    player_id: str
    tick: int


class Frame(ServerMessage, tag="frame", gc=False):
    seq: Seq
    room: str
    tick: int
    inputs: FrameInputs


class FrameEntry(msgspec.Struct, kw_only=True, gc=False):
    tick: int
    inputs: FrameInputs


class Frames(ServerMessage, tag="frames"):
    seq: Seq
    room: str
    frames: list[FrameEntry]
    re: RequestId = None


class Desync(ServerMessage, tag="desync"):
    seq: Seq
    room: str
    tick: int
    digests: dict[str, int]
    server: int | None = None


class ChatMessage(ServerMessage, tag="chat"):
    seq: Seq
    room: str
    player_id: str
    text: str
    re: RequestId = None  # on the sender's own copy, when the chat was a request


for _client in (Join, Leave, Input, Sync, Hash, Chat):
    register_client_message(_client)
for _server in (Joined, MemberJoined, MemberLeft, Frame, Frames, Desync, ChatMessage):
    register_server_message(_server)

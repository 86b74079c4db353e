"""Messages between the gateway and room actors (registered: they cross nodes)."""

from __future__ import annotations

from dataclasses import dataclass

import msgspec

import gameproto as p
from actors import register_message

__all__ = [
    "IdleCheck",
    "IdleConfirm",
    "RoomClientMessage",
    "RoomDeliver",
    "RoomLost",
    "RoomRequest",
    "RoomServerMessage",
    "RoomStatsReq",
    "SnapshotDue",
]

RoomClientMessage = p.Join | p.Leave | p.Input | p.Sync | p.Hash | p.Chat
RoomServerMessage = (
    p.Joined
    | p.MemberJoined
    | p.MemberLeft
    | p.Frame
    | p.Frames
    | p.Desync
    | p.ChatMessage
    | p.Ok
    | p.Error
)
ROOM_CLIENT_TYPES = (p.Join, p.Leave, p.Input, p.Sync, p.Hash, p.Chat)


@register_message(name="game.rooms.RoomRequest")
class RoomRequest(msgspec.Struct, frozen=True):
    """A player's room message on its way to the room (through the player's node)."""

    player_id: str
    node: str  # the node holding the player's session: answers go there
    session_id: str
    msg: RoomClientMessage
    # The player's session ended: leave without an answer (and no error if not a member).
    quiet: bool = False
    # Nodes this request was forwarded through (bounded, so a stale directory cannot
    # bounce it between nodes forever).
    hops: int = 0


@register_message(name="game.rooms.RoomDeliver")
class RoomDeliver(msgspec.Struct, frozen=True):
    """From a room to another node: send ``msg`` to these local members' sessions."""

    room: str
    targets: list[tuple[str, str]]  # (player_id, session_id)
    msg: RoomServerMessage


@dataclass(frozen=True, slots=True)
class SnapshotDue:
    """A sim room's periodic snapshot (``GAME_SNAPSHOT_EVERY_S``) is due."""


@dataclass(frozen=True, slots=True)
class IdleCheck:
    """The room had no members ``GAME_ROOM_IDLE_S`` ago (``epoch`` tells if still so)."""

    epoch: int


@dataclass(frozen=True, slots=True)
class IdleConfirm:
    """From the host, after it stopped routing to this room: stop now if still empty."""


@dataclass(frozen=True, slots=True)
class RoomLost:
    """The room's directory lease went to another node: stop (members re-join)."""


@dataclass(frozen=True, slots=True)
class RoomStatsReq:
    """Ask: the room's ``RoomCore.stats()``."""

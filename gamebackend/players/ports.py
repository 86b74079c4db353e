"""What a PlayerActor needs from the process that hosts it (the gateway implements these).

The actor never imports the gateway: the gateway builds the actor with a ``PlayerHost``
and tells it ``Attach``/``Detached`` with objects that are ``PlayerSession``s.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from gamebackend.players.state import PlayerRecord
from gameproto import ClientMessage, ServerMessage

__all__ = ["PlayerHost", "PlayerSession"]


class PlayerSession(Protocol):
    """The player's reliable outbound stream (it outlives a single connection)."""

    @property
    def session_id(self) -> str:
        """Names the stream: rooms deliver to the session that joined them."""
        ...

    async def emit(self, msg: ServerMessage) -> None:
        """Number ``msg``, keep it until acknowledged, write it if connected; never raises."""
        ...


class PlayerHost(Protocol):
    def persist(self, record: PlayerRecord) -> None:
        """Hand a state version to the batched flush path (memory only, never blocks)."""
        ...

    def grace_expired(self, session: PlayerSession, epoch: int) -> None:
        """The resume grace of ``session`` (detached at ``epoch``) ran out; end it if unchanged."""
        ...

    def moved(self, session: PlayerSession, to_node: str) -> None:
        """The player connected to ``to_node``, which took the state over: drop ``session``."""
        ...

    async def stopped(self, record: PlayerRecord) -> None:
        """The actor stopped with ``record`` as the last state: remember it, announce offline."""
        ...

    async def room_message(self, player_id: str, session_id: str, msg: ClientMessage) -> None:
        """Pass a room message (join, leave, input, sync, hash, chat) on to its room."""
        ...

    async def left_rooms(self, player_id: str, rooms: Sequence[str]) -> None:
        """The player's session ended: leave these rooms without an answer."""
        ...

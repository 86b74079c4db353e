"""The player record: one immutable value for a player's persistent state.

Every layer passes this one type around: the actor holds the current version, the flush
path persists versions, a handoff between nodes carries one, and the database row is
read into one (``PlayerRecord.of``). A change makes a new version with ``rev`` + 1, so a
stale version always loses against a newer one (``rev`` is the version number).
"""

from __future__ import annotations

from typing import Any, Protocol

import msgspec

from actors import register_message

__all__ = ["PlayerRecord", "StoredPlayer"]


class StoredPlayer(Protocol):
    """What a stored player row offers (the ``Player`` model, without importing it)."""

    player_id: str
    x: float
    y: float
    rev: int


@register_message(name="game.players.PlayerRecord")
class PlayerRecord(msgspec.Struct, frozen=True):
    player_id: str
    x: float = 0.0
    y: float = 0.0
    rev: int = 0

    @classmethod
    def of(cls, player: StoredPlayer) -> PlayerRecord:
        return cls(player.player_id, float(player.x), float(player.y), int(player.rev))

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PlayerRecord:
        """From the JSON form (Celery task arguments); validates the types."""
        return msgspec.convert(data, cls)

    def to_json(self) -> dict[str, Any]:
        return {"player_id": self.player_id, "x": self.x, "y": self.y, "rev": self.rev}

    def moved(self, x: float, y: float) -> PlayerRecord:
        """The next version, at (x, y)."""
        return PlayerRecord(self.player_id, x, y, self.rev + 1)

"""The player record: one immutable (copy-on-write) value for a player's persistent state.

Every layer passes this one type around: the actor holds a reference to the current
version, the flush buffer and snapshots keep references to versions (taking one is O(1):
a version never changes), a handoff between nodes carries one, and the database row is
read into one (``PlayerRecord.of``). A change makes a new version whose ``lsn`` (log
sequence number) is one higher, so the LSN grows per player and a stale version always
loses against a newer one: the database keeps a row's version only when the incoming
``lsn`` is higher (docs/DURABILITY.md). The wire's ``state.rev`` is this ``lsn``.
"""

from __future__ import annotations

from typing import Any, Protocol

import msgspec

from actors import register_message

__all__ = ["ENTITY_PLAYER", "PlayerRecord", "StoredPlayer"]

# The entity kind of players in flush batches, snapshots and events.
ENTITY_PLAYER = "player"


class StoredPlayer(Protocol):
    """What a stored player row offers (the ``Player`` model, without importing it)."""

    player_id: str
    x: float
    y: float
    lsn: int


@register_message(name="game.players.PlayerRecord")
class PlayerRecord(msgspec.Struct, frozen=True):
    player_id: str
    x: float = 0.0
    y: float = 0.0
    lsn: int = 0

    @classmethod
    def of(cls, player: StoredPlayer) -> PlayerRecord:
        return cls(player.player_id, float(player.x), float(player.y), int(player.lsn))

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PlayerRecord:
        """From the JSON form (Celery task arguments, snapshots); validates the types."""
        return msgspec.convert(data, cls)

    def to_json(self) -> dict[str, Any]:
        return {"player_id": self.player_id, "x": self.x, "y": self.y, "lsn": self.lsn}

    def moved(self, x: float, y: float) -> PlayerRecord:
        """The next version, at (x, y)."""
        return PlayerRecord(self.player_id, x, y, self.lsn + 1)

    def restored(self, snapshot: PlayerRecord, *, floor: int = 0) -> PlayerRecord:
        """The next version, holding ``snapshot``'s state; its LSN is above this version's
        and above ``floor`` (e.g. the stored row's), so it wins against every older one."""
        return PlayerRecord(self.player_id, snapshot.x, snapshot.y, max(self.lsn, floor) + 1)

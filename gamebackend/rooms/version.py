"""A sim room's state as an immutable, versioned value (docs/DURABILITY.md).

Every closed tick of a room with a simulation makes a new ``RoomVersion``; nothing mutates
one, so holding a reference *is* a snapshot (O(1)), and serialising it can happen later,
in a thread, while the room goes on. The LSN is the number of ticks the state has been
stepped through: the state after closing tick ``t`` has ``lsn == t + 1``, so it grows by
one per version, also across a re-creation from the replay log (same battle, same ticks).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gameproto.sims import Simulation

__all__ = ["ENTITY_ROOM", "RoomVersion"]

# Snapshot.entity_kind of a room's snapshots (entity_id is the room id).
ENTITY_ROOM = "room"


@dataclass(frozen=True, slots=True)
class RoomVersion:
    room_id: str
    battle_id: str
    sim_name: str
    sim: Simulation[Any]
    # The room's next tick when this version was made: the state is after tick - 1.
    tick: int
    state: Any

    @property
    def lsn(self) -> int:
        return self.tick

    def to_json(self) -> dict[str, Any]:
        """The snapshot payload (computes the digest and the JSON form: call off the loop)."""
        sim = self.sim
        return {
            "room": self.room_id,
            "battle": self.battle_id,
            "sim": self.sim_name,
            "tick": self.tick,
            "lsn": self.lsn,
            "digest": sim.digest(self.state),
            "state": sim.to_data(self.state),
        }

"""What a RoomActor needs from the process that hosts it (the gateway implements it).

The room never imports the gateway: it is built with a ``RoomHost`` that delivers its
messages (to local sessions directly, once per other node), persists its replay log,
puts it on a tick scheduler and hears about its lifecycle.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from gamebackend.rooms.core import Target
from gamebackend.rooms.scheduler import Registration, TickTarget
from gamebackend.rooms.version import RoomVersion
from gameproto import ServerMessage

__all__ = ["RoomHost"]


class RoomHost(Protocol):
    @property
    def node(self) -> str:
        """This node's id (members on it are served by ``deliver`` directly)."""
        ...

    def time(self) -> float:
        """The loop's monotonic clock (what tick deadlines are measured on)."""
        ...

    async def deliver(
        self, room_id: str, by_node: Mapping[str, Sequence[Target]], msg: ServerMessage
    ) -> None:
        """Send ``msg`` to each target's session: local ones directly, and one message per
        other node, which fans it out to its own sessions. Never raises."""
        ...

    def schedule(
        self, rate: int, room_id: str, target: TickTarget, first_tick: int
    ) -> Registration:
        """Put the room on the shared scheduler of its tick rate; ``first_tick`` is due at
        the scheduler's next wake-up."""
        ...

    def unschedule(self, rate: int, room_id: str) -> None: ...

    def persist(self, chunk: dict[str, Any]) -> None:
        """Hand a batch of closed frames to the replay log (memory only, never blocks)."""
        ...

    def snapshot(self, version: RoomVersion, reason: str) -> None:
        """Take a snapshot of a sim room's version (a reference; serialised and sent off
        the loop by the node's snapshotter). Never blocks."""
        ...

    def idle(self, room_id: str) -> None:
        """The room has had no members for the idle time; the host answers ``IdleConfirm``
        once no new message can reach the room any more."""
        ...

    def idle_cancelled(self, room_id: str) -> None:
        """A member joined before ``IdleConfirm``: the room goes on."""
        ...

    def stopping(self, room_id: str) -> None:
        """The room is stopping: hold new messages for it until ``stopped``."""
        ...

    async def stopped(self, room_id: str, battle_id: str, *, ended: bool) -> None:
        """The room stopped (``ended``: its battle is over, not taken elsewhere)."""
        ...

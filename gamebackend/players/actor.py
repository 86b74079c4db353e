"""PlayerActor: the live copy of one player's state; every change is a message to it.

Handlers do memory work only: they make a new state version (copy-on-write, the LSN one
higher), emit messages to the player's session (a buffered, non-blocking socket write) and
hand the version to the host's batched flush buffer at once (a dict store; the buffer
coalesces and batches). The host (``ports.PlayerHost``) is injected by the gateway.

Room messages pass through here on their way to the room (docs/ARCHITECTURE.md): the actor
keeps the rooms the player joined, answers messages for other rooms ``invalid`` itself,
and leaves every room when the player's session ends.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import msgspec

import gameproto as p
from actors import Actor, Directive, OneForOne, Timer, register_message
from gamebackend.flow.breaker import CircuitOpen
from gamebackend.players.ports import PlayerHost, PlayerSession
from gamebackend.players.state import PlayerRecord

logger = logging.getLogger(__name__)

# Rooms one player may be in at once (a lobby and a battle or two; every room ticks, so
# one player must not be able to keep many alive).
MAX_ROOMS_PER_PLAYER = 8
_ROOM_TYPES = frozenset({p.Join, p.Leave, p.Input, p.Sync, p.Hash, p.Chat})


def player_decider(exc: BaseException) -> Directive:
    # A downstream breaker that is open is not the actor's fault: keep its state and go on.
    if isinstance(exc, CircuitOpen):
        return Directive.RESUME
    return Directive.RESTART


# A crash restarts only that player's actor, quickly; a player that keeps crashing stops.
PLAYER_SUPERVISOR = OneForOne(
    max_restarts=10, within_s=60.0, backoff=(0.01, 1.0), decider=player_decider
)


def actor_name(player_id: str) -> str:
    """The registered name of a player's actor (unique per node, and across the cluster)."""
    return f"player.{player_id}"


class PlayerState:
    """Shared by an actor and its restarted successors (same object): a restart keeps it."""

    __slots__ = ("record", "rooms", "session")

    def __init__(self, record: PlayerRecord) -> None:
        self.record = record
        self.session: PlayerSession | None = None
        # Rooms the player joined (or asked to join), in join order.
        self.rooms: dict[str, None] = {}


@dataclass(frozen=True, slots=True)
class Attach:
    """A session is bound to this player; ``fresh``: the client needs the full state."""

    session: PlayerSession
    fresh: bool


@dataclass(frozen=True, slots=True)
class Detached:
    session: PlayerSession
    epoch: int
    grace_s: float


@dataclass(frozen=True, slots=True)
class GraceExpired:
    session: PlayerSession
    epoch: int


@dataclass(frozen=True, slots=True)
class End:
    """The player has no session left: persist and stop."""


@register_message(name="game.players.Restore")
class Restore(msgspec.Struct, frozen=True):
    """Put a snapshot's state into the live actor (snapshots/services.snapshot_restore).

    The actor makes it its next version (LSN above both its own and ``floor``), flushes
    it and pushes the new state to the client; the reply is the version it now holds.
    """

    record: PlayerRecord
    floor: int = 0


@register_message(name="game.players.Current")
class Current(msgspec.Struct, frozen=True):
    """Asks for the current version (O(1): a reference, for a snapshot); may come from
    another process (gateway/live.py)."""


@register_message(name="game.players.Handoff")
class Handoff(msgspec.Struct, frozen=True):
    """From another node: the player connected there. Reply with the record and stop."""

    to_node: str


class PlayerActor(Actor):
    # A player's requests are handled inside the consumer's call that read them when the
    # actor is idle (it almost always is): the reply is written in the same loop turn as
    # the request was read, without a task per request (docs/BENCHMARKS.md). None of
    # these handlers uses asyncio.timeout or current_task before its first await.
    eager_messages = (p.Move, p.StateReq, *_ROOM_TYPES)

    def __init__(self, state: PlayerState, host: PlayerHost) -> None:
        self.state = state
        self.host = host
        self._grace: Timer | None = None

    async def on_receive(self, msg: Any) -> Any:
        state = self.state
        kind = type(msg)
        if kind is p.Move:
            record = state.record
            if msg.x != record.x or msg.y != record.y:
                state.record = record.moved(msg.x, msg.y)
                self.host.persist(state.record)
            await self._emit_state(msg.id)
        elif kind in _ROOM_TYPES:
            await self._room_message(msg)
        elif kind is p.StateReq:
            await self._emit_state(msg.id)
        elif kind is Attach:
            self._cancel_grace()
            previous, state.session = state.session, msg.session
            if msg.fresh:
                if previous is not None and previous is not msg.session:
                    # A new session replaced the one that joined: its rooms are left (the
                    # client re-joins on `resumed: false`).
                    await self._leave_rooms()
                await self._emit_state(None)
        elif kind is Detached:
            self._detached(msg)
        elif kind is GraceExpired:
            self.host.grace_expired(msg.session, msg.epoch)
        elif kind is End:
            self.stop()
        elif kind is Handoff:
            return self._hand_off(msg)
        elif kind is Current:
            return state.record
        elif kind is Restore:
            state.record = state.record.restored(msg.record, floor=msg.floor)
            self.host.persist(state.record)
            await self._emit_state(None)
            return state.record
        else:
            raise TypeError(f"PlayerActor does not handle {kind.__name__}")
        return None

    async def on_failure(self, exc: BaseException, msg: Any) -> None:
        # Every request is answered exactly once: a failed one is answered `internal`.
        request_id = getattr(msg, "id", None)
        session = self.state.session
        if request_id is None or session is None:
            return
        if isinstance(exc, CircuitOpen):
            error = p.Error(
                code=p.CIRCUIT_OPEN,
                message=f"{exc.name} is unavailable; retry later",
                re=request_id,
                retry_after_ms=exc.retry_after_ms,
            )
        else:
            error = p.Error(code=p.INTERNAL, message="the request failed; retry", re=request_id)
        await session.emit(error)

    async def on_stop(self) -> None:
        self._cancel_grace()
        await self._leave_rooms()
        # Again (the buffer drops it if already held): the last version must be flushed.
        self.host.persist(self.state.record)
        await self.host.stopped(self.state.record)  # last: see Hub.stopped

    def _hand_off(self, msg: Handoff) -> PlayerRecord:
        session = self.state.session
        if session is not None:
            self.host.moved(session, msg.to_node)
        self.stop()
        return self.state.record

    async def _room_message(self, msg: Any) -> None:
        state = self.state
        session = state.session
        if session is None:
            return
        rooms = state.rooms
        room = msg.room
        kind = type(msg)
        if kind is p.Join:
            if room not in rooms:
                if len(rooms) >= MAX_ROOMS_PER_PLAYER:
                    await session.emit(
                        p.Error(
                            code=p.INVALID,
                            message=f"already in {MAX_ROOMS_PER_PLAYER} rooms; leave one first",
                            field="room",
                            re=msg.id,
                        )
                    )
                    return
                rooms[room] = None
        elif room not in rooms:
            await session.emit(
                p.Error(code=p.INVALID, message=f"not in room {room}", field="room", re=msg.id)
            )
            return
        elif kind is p.Leave:
            del rooms[room]
        await self.host.room_message(state.record.player_id, session.session_id, msg)

    async def _leave_rooms(self) -> None:
        rooms = self.state.rooms
        if rooms:
            left = list(rooms)
            rooms.clear()
            await self.host.left_rooms(self.state.record.player_id, left)

    def _detached(self, msg: Detached) -> None:
        if msg.session is self.state.session:
            self._cancel_grace()
            self._grace = self.schedule_once(msg.grace_s, GraceExpired(msg.session, msg.epoch))

    async def _emit_state(self, request_id: int | str | None) -> None:
        session = self.state.session
        if session is None:
            return
        r = self.state.record
        await session.emit(
            p.State(seq=0, player_id=r.player_id, x=r.x, y=r.y, rev=r.lsn, re=request_id)
        )

    def _cancel_grace(self) -> None:
        if self._grace is not None:
            self._grace.cancel()
            self._grace = None

"""PlayerActor: the live copy of one player's state; every change is a message to it.

Handlers do memory work only: they update the state, emit messages to the player's
session (a buffered, non-blocking socket write) and hand persistence to the node's
batched flusher.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import msgspec

from actors import Actor, Directive, OneForOne, Timer, register_message
from gamebackend.flow.breaker import CircuitOpen
from gamebackend.gateway import protocol as p

if TYPE_CHECKING:
    from gamebackend.gateway.hub import Hub
    from gamebackend.gateway.session import Session

logger = logging.getLogger(__name__)

# A changed state is snapshotted to the flusher at most this long after the change, so a
# crashed node loses at most this much of a player's progress.
SNAPSHOT_DELAY_S = 5.0


def player_decider(exc: BaseException) -> Directive:
    # A downstream breaker that is open is not the actor's fault: keep its state and go on.
    if isinstance(exc, CircuitOpen):
        return Directive.RESUME
    return Directive.RESTART


# A crash restarts only that player's actor, quickly; a player that keeps crashing stops.
PLAYER_SUPERVISOR = OneForOne(
    max_restarts=10, within_s=60.0, backoff=(0.01, 1.0), decider=player_decider
)


class PlayerState:
    """Mutable state shared by an actor and its restarted successors (same object)."""

    __slots__ = ("dirty", "player_id", "rev", "session", "x", "y")

    def __init__(self, player_id: str, x: float, y: float, rev: int) -> None:
        self.player_id = player_id
        self.x = x
        self.y = y
        self.rev = rev
        self.dirty = False
        self.session: Session | None = None

    def as_record(self) -> dict[str, Any]:
        return {"player_id": self.player_id, "x": self.x, "y": self.y, "rev": self.rev}


@dataclass(frozen=True, slots=True)
class Attach:
    """A session is bound to this player; ``fresh``: the client needs the full state."""

    session: Session
    fresh: bool


@dataclass(frozen=True, slots=True)
class Detached:
    session: Session
    epoch: int
    grace_s: float


@dataclass(frozen=True, slots=True)
class GraceExpired:
    session: Session
    epoch: int


@dataclass(frozen=True, slots=True)
class End:
    """The player has no session left: persist and stop."""


@dataclass(frozen=True, slots=True)
class SnapshotDue:
    pass


_SNAPSHOT_DUE = SnapshotDue()


@register_message(name="game.players.Handoff")
class Handoff(msgspec.Struct, frozen=True):
    """From another node: the player connected there. Reply with the state and stop."""

    to_node: str


class PlayerActor(Actor):
    def __init__(self, state: PlayerState, hub: Hub) -> None:
        self.state = state
        self.hub = hub
        self._grace: Timer | None = None
        self._snapshot: Timer | None = None

    async def on_receive(self, msg: Any) -> Any:
        state = self.state
        kind = type(msg)
        if kind is p.Move:
            if msg.x != state.x or msg.y != state.y:
                state.x, state.y = msg.x, msg.y
                state.rev += 1
                self._changed()
            await self._emit_state(msg.id)
        elif kind is p.StateReq:
            await self._emit_state(msg.id)
        elif kind is Attach:
            self._cancel_grace()
            state.session = msg.session
            if msg.fresh:
                await self._emit_state(None)
        elif kind is Detached:
            self._detached(msg)
        elif kind is GraceExpired:
            session = msg.session
            if session.conn is None and session.detach_epoch == msg.epoch and not session.ended:
                self.hub.session_expired(session)
        elif kind is End:
            self.stop()
        elif kind is Handoff:
            return self._hand_off(msg)
        elif kind is SnapshotDue:
            self._snapshot = None
            self._flush()
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
        self.state.dirty = True
        self._flush()
        await self.hub.player_stopped(self.state)  # last: see Hub.player_stopped

    def _hand_off(self, msg: Handoff) -> dict[str, Any]:
        session = self.state.session
        if session is not None:
            self.hub.session_moved(session, msg.to_node)
        self.stop()
        return self.state.as_record()

    def _detached(self, msg: Detached) -> None:
        if msg.session is self.state.session:
            self._cancel_grace()
            self._grace = self.schedule_once(msg.grace_s, GraceExpired(msg.session, msg.epoch))

    async def _emit_state(self, request_id: int | str | None) -> None:
        session = self.state.session
        if session is None:
            return
        s = self.state
        await session.emit(
            p.State(seq=0, player_id=s.player_id, x=s.x, y=s.y, rev=s.rev, re=request_id)
        )

    def _changed(self) -> None:
        self.state.dirty = True
        if self._snapshot is None:
            self._snapshot = self.schedule_once(SNAPSHOT_DELAY_S, _SNAPSHOT_DUE)

    def _flush(self) -> None:
        if self.state.dirty:
            self.state.dirty = False
            self.hub.flusher.add(self.state.as_record())

    def _cancel_grace(self) -> None:
        if self._grace is not None:
            self._grace.cancel()
            self._grace = None

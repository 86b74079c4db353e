"""RoomActor: one room's lockstep battle; every change is a message to it.

Handlers do memory work only: ``RoomCore`` decides, the actor delivers through its
``RoomHost`` (sessions on this node directly, one message per other node) and hands closed
frames to the replay log every ``REPLAY_FLUSH_S`` worth of ticks. Ticks come from the
host's shared scheduler of the room's tick rate (``rooms.scheduler``), never from a timer
of its own, and an idle room handles its tick within the scheduler's wake-up
(``eager_messages``), without a task per tick.
"""

from __future__ import annotations

import json
import logging
import random
from typing import Any, Final

import gameproto as p
from actors import Actor, MailboxFull, OneForOne
from gamebackend.rooms.core import Out, RoomCore, RoomError, Target
from gamebackend.rooms.messages import (
    IdleCheck,
    IdleConfirm,
    RoomLost,
    RoomRequest,
    RoomStatsReq,
    SnapshotDue,
)
from gamebackend.rooms.ports import RoomHost
from gamebackend.rooms.scheduler import Registration, Tick

__all__ = ["ROOM_SUPERVISOR", "RoomActor", "RoomState", "room_actor_name"]

logger = logging.getLogger(__name__)

# Closed frames reach the replay log's flush at least this often: a node that crashes loses
# at most this much of a battle's log (plus what its flusher had not enqueued yet).
REPLAY_FLUSH_S: Final = 1.0
# A room's mailbox: up to 64 members' inputs at 70/s each between two handler runs.
ROOM_MAILBOX: Final = 8192
# A crash restarts the room at once from its last frame; one that keeps crashing stops.
ROOM_SUPERVISOR: Final = OneForOne(max_restarts=10, within_s=60.0, backoff=(0.0, 0.5))
_IDLE_CONFIRM: Final = IdleConfirm()
_SNAPSHOT_DUE: Final = SnapshotDue()
# Snapshot reasons of a room that stops: empty (its battle ended, like a player's logout),
# or stopped with members (node shutdown, lease lost, restart budget spent).
REASON_ENDED: Final = "logout"
REASON_STOPPED: Final = "shutdown"


def room_actor_name(room_id: str) -> str:
    """The registered name of a room's actor (one per room in the whole cluster)."""
    return f"room.{room_id}"


class RoomState:
    """Shared by a room actor and its restarted successors: a restart keeps the battle."""

    __slots__ = (
        "core",
        "flush_every",
        "flush_tick",
        "idle_epoch",
        "registration",
        "snapshot_lsn",
        "tick_drops",
    )

    def __init__(self, core: RoomCore) -> None:
        self.core = core
        # The replay log is flushed when ``next_tick`` reaches ``flush_tick``, then every
        # ``flush_every`` ticks. The first flush comes at a random phase: rooms created
        # together (a node's restart) would otherwise all flush in the same wake-up,
        # delaying every tick due meanwhile by the whole burst.
        self.flush_every = max(1, round(REPLAY_FLUSH_S * core.config.tick_rate))
        self.flush_tick = core.next_tick + random.randint(1, self.flush_every)
        # The LSN of the last snapshot taken (a periodic one is skipped when unchanged).
        self.snapshot_lsn = -1
        self.registration: Registration | None = None
        self.idle_epoch = 0
        self.tick_drops = 0


class RoomActor(Actor):
    # A tick reaching an idle room is closed within the scheduler's wake-up, and a
    # player's input within the call that passed it on, without a task each: 1,000 rooms
    # at 20 Hz would otherwise start 20,000 tasks a second for their ticks alone.
    eager_messages = (Tick, RoomRequest)

    def __init__(
        self, state: RoomState, host: RoomHost, idle_s: float, snapshot_every_s: float = 0.0
    ) -> None:
        self.state = state
        self.host = host
        self.idle_s = idle_s
        # Periodic snapshots of a sim room's version (0: none; the stop snapshot is kept).
        self.snapshot_every_s = snapshot_every_s

    # -- lifecycle ---------------------------------------------------------------------

    async def on_start(self) -> None:
        state = self.state
        core = state.core
        if state.registration is None:
            # Registered once per room, not per incarnation: a restarted room keeps its
            # place on the grid (its tick n stays due at start + n / rate).
            tell = self.ref.tell

            def on_tick(wake: Tick) -> None:
                try:
                    tell(wake)
                except MailboxFull:
                    # The next wake-up covers this one: ticks are absolute, not counted.
                    state.tick_drops += 1

            state.registration = self.host.schedule(
                core.config.tick_rate, core.room_id, on_tick, core.next_tick
            )
        if core.sim is not None and self.snapshot_every_s > 0:
            # At a random phase, for the same reason as the replay flushes (RoomState).
            every = self.snapshot_every_s
            self.schedule_every(every, _SNAPSHOT_DUE, first_delay=random.uniform(0.0, every))
        if not core.members:
            self._arm_idle()

    async def on_receive(self, msg: Any) -> Any:
        kind = type(msg)
        if kind is Tick:
            # Inline rather than a helper: this runs for every room at every tick.
            state = self.state
            registration = state.registration
            if registration is None:
                return None
            core = state.core
            # A wake-up already covered by a catch-up closes nothing (close_until: []).
            frames = core.close_until(
                registration.due(msg), self.host.time(), registration.deadline
            )
            if core.next_tick >= state.flush_tick:
                state.flush_tick = core.next_tick + state.flush_every
                self._flush(ended=False)
            by_node = core.by_node
            if frames and by_node:
                deliver = self.host.deliver
                room = core.room_id
                for frame in frames:
                    await deliver(room, by_node, frame)
        elif kind is RoomRequest:
            await self._request(msg)
        elif kind is SnapshotDue:
            self._snapshot("periodic")
        elif kind is IdleCheck:
            if msg.epoch == self.state.idle_epoch and not self.state.core.members:
                self.host.idle(self.state.core.room_id)
        elif kind is IdleConfirm:
            if self.state.core.members:
                self.host.idle_cancelled(self.state.core.room_id)
            else:
                self.stop()
        elif kind is RoomLost:
            logger.warning("room %s: lease lost to another node; stopping", self.state.core.room_id)
            self.stop()
        elif kind is RoomStatsReq:
            stats = self.state.core.stats()
            stats["tick_drops"] = self.state.tick_drops
            return stats
        else:
            raise TypeError(f"RoomActor does not handle {kind.__name__}")
        return None

    async def on_failure(self, exc: BaseException, msg: Any) -> None:
        # Every member hears once that the room failed (it restarts from its last frame);
        # a failed request is answered with its `re` instead.
        core = self.state.core
        room = core.room_id
        text = f"room {room} failed and was restarted from its last frame"
        requester: str | None = None
        if type(msg) is RoomRequest:
            requester = msg.player_id
            if msg.msg.id is not None or msg.player_id not in core.members:
                await self.host.deliver(
                    room,
                    {msg.node: [(msg.player_id, msg.session_id)]},
                    p.Error(code=p.INTERNAL, message=text, re=msg.msg.id),
                )
            else:
                requester = None
        by_node = _without(core.by_node, requester)
        if by_node:
            await self.host.deliver(room, by_node, p.Error(code=p.INTERNAL, message=text))

    async def on_stop(self) -> None:
        state = self.state
        core = state.core
        host = self.host
        host.stopping(core.room_id)
        if state.registration is not None:
            host.unschedule(core.config.tick_rate, core.room_id)
            state.registration = None
        ended = not core.members
        if core.members:
            # Stopped with members (node shutdown, lease lost, restart budget spent):
            # say so, so that clients re-join rather than wait for frames.
            await host.deliver(
                core.room_id,
                core.by_node,
                p.Error(code=p.INTERNAL, message=f"room {core.room_id} stopped; re-join it"),
            )
        self._flush(ended=ended)
        self._snapshot(REASON_ENDED if ended else REASON_STOPPED, always=True)
        logger.info("room %s stopped: %s", core.room_id, json.dumps(core.stats()))
        await host.stopped(core.room_id, core.battle_id, ended=ended)

    # -- ticks ---------------------------------------------------------------------------

    def _flush(self, *, ended: bool) -> None:
        core = self.state.core
        taken = core.take_log()
        if taken is None and not ended:
            return
        first, last, frames = taken if taken is not None else (core.next_tick, -1, [])
        self.host.persist(
            {
                "battle": core.battle_id,
                "config": core.config.to_json(),
                "first_tick": first,
                "last_tick": last,
                "frames": [[tick, [list(pair) for pair in inputs]] for tick, inputs in frames],
                "ended": ended,
            }
        )

    def _snapshot(self, reason: str, *, always: bool = False) -> None:
        # O(1): a reference to the current immutable version goes to the host, which
        # serialises and sends it off the loop.
        state = self.state
        version = state.core.version
        if version is None or (version.lsn == state.snapshot_lsn and not always):
            return
        state.snapshot_lsn = version.lsn
        self.host.snapshot(version, reason)

    def _arm_idle(self) -> None:
        state = self.state
        state.idle_epoch += 1
        self.schedule_once(self.idle_s, IdleCheck(state.idle_epoch))

    # -- requests ------------------------------------------------------------------------

    async def _request(self, req: RoomRequest) -> None:
        core = self.state.core
        msg = req.msg
        kind = type(msg)
        had_members = bool(core.members)
        try:
            if kind is p.Input:
                out = core.input(req.player_id, msg.tick, msg.keys, msg.id)  # type: ignore[union-attr]
            elif kind is p.Join:
                out = core.join(req.player_id, req.node, req.session_id, msg.id)
            elif kind is p.Leave:
                out = core.leave(req.player_id, msg.id, quiet=req.quiet)
            elif kind is p.Hash:
                out = core.hash(req.player_id, msg.tick, msg.h, msg.id)  # type: ignore[union-attr]
            elif kind is p.Sync:
                out = core.sync(req.player_id, msg.from_tick, msg.id)  # type: ignore[union-attr]
            elif kind is p.Chat:
                out = core.chat(req.player_id, msg.text, msg.id)  # type: ignore[union-attr]
            else:
                raise TypeError(f"not a room message: {kind.__name__}")
        except RoomError as exc:
            if not req.quiet:
                await self._send_to(
                    req,
                    p.Error(code=exc.code, message=exc.message, field=exc.field, re=msg.id),
                )
            return
        if kind is p.Join and not had_members:
            self.state.idle_epoch += 1  # cancels a pending idle check
        elif kind is p.Leave and had_members and not core.members:
            self._arm_idle()
        await self._deliver(req, out)

    async def _deliver(self, req: RoomRequest, out: list[Out]) -> None:
        core = self.state.core
        room = core.room_id
        for to, msg, exclude in out:
            if to is None:
                by_node = _without(core.by_node, exclude)
                if by_node:
                    await self.host.deliver(room, by_node, msg)
            elif to == req.player_id:
                await self._send_to(req, msg)
            else:
                target = core.target(to)
                if target is not None:
                    await self.host.deliver(room, {target[0]: [target[1]]}, msg)

    async def _send_to(self, req: RoomRequest, msg: p.ServerMessage) -> None:
        await self.host.deliver(
            self.state.core.room_id, {req.node: [(req.player_id, req.session_id)]}, msg
        )


def _without(by_node: dict[str, list[Target]], player_id: str | None) -> dict[str, list[Target]]:
    if player_id is None:
        return by_node
    filtered: dict[str, list[Target]] = {}
    for node, targets in by_node.items():
        kept = [t for t in targets if t[0] != player_id]
        if kept:
            filtered[node] = kept
    return filtered

"""The node's side of rooms: routing players' room messages, hosting RoomActors, fan-out.

Path of a room message (``join``, ``leave``, ``input``, ``sync``, ``hash``, ``chat``): the
consumer hands it to the player's actor like any other message; the PlayerActor keeps the
player's room memberships and passes it to ``RoomGateway.room_message`` (its
``PlayerHost``), which tells the room's actor: on this node directly, on another node
through that node's ``rooms`` actor. Messages from one node to one room keep their order
(one queue per room while it is being located, one remote outbox per node).

Where a room lives: on a single machine, here. In a cluster, the Redis room directory
(``rooms.directory``) says which node holds it; a ``join`` for a room nobody holds claims
it and creates it here (continuing its battle from the replay log if its previous node
died). This node renews its rooms' leases in one round trip every ``lease_s / 3``.

Fan-out: a room sends each message once per node that has members (``deliver``); for this
node that means each member's session directly, for another node one ``RoomDeliver`` to
its ``rooms`` actor, which writes it to its local members' sessions (``deliver_local``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Final, cast

import msgspec

import gameproto as p
from actors import PID, Actor, ActorRef, ActorSystem, MailboxFull
from gamebackend.rooms.actor import ROOM_MAILBOX, ROOM_SUPERVISOR, RoomActor, RoomState
from gamebackend.rooms.actor import room_actor_name as room_name
from gamebackend.rooms.core import RoomConfig, RoomCore, Target
from gamebackend.rooms.directory import RoomDirectory
from gamebackend.rooms.messages import (
    IdleConfirm,
    RoomClientMessage,
    RoomDeliver,
    RoomLost,
    RoomRequest,
    RoomStatsReq,
)
from gamebackend.rooms.scheduler import Registration, TickSchedulers, TickTarget
from gamebackend.rooms.selectors import RestoredBattle
from gamebackend.rooms.sims import get_sim, sim_names
from gamebackend.rooms.version import RoomVersion

__all__ = ["ROOMS_NODE_ACTOR", "RoomGateway"]

logger = logging.getLogger(__name__)

# Every node runs one actor by this name: remote rooms deliver to it, and remote players'
# requests for this node's rooms arrive at it.
ROOMS_NODE_ACTOR: Final = "rooms"
# Its mailbox: frames of every remote room with members here, between two handler runs.
NODE_ACTOR_MAILBOX: Final = 65_536
# A request forwarded more often than this (a directory changing under it) is refused.
MAX_ROUTE_HOPS: Final = 3
# Attempts to take a free room before giving up (another node keeps winning the claim).
CLAIM_ATTEMPTS: Final = 3
# Remembered locations of remote rooms (for messages other than join).
ROUTE_CACHE_MAX: Final = 10_000
# Rooms one node hosts at most: beyond it a join that would create a room is answered
# `busy` (every room ticks, even an empty one, until it idles out).
MAX_LOCAL_ROOMS: Final = 5_000
BATTLE_ID_BYTES: Final = 8

SessionLookup = Callable[[str], Any]
LoadBattle = Callable[[str], Awaitable[RestoredBattle | None]]


class RoomNodeActor(Actor):
    """This node's mailbox for other nodes' rooms and players (see module doc)."""

    def __init__(self, gateway: RoomGateway) -> None:
        self.gateway = gateway

    async def on_receive(self, msg: Any) -> Any:
        kind = type(msg)
        if kind is RoomDeliver:
            await self.gateway.deliver_local(msg.targets, msg.msg)
        elif kind is RoomRequest:
            await self.gateway.route(msg)
        else:
            raise TypeError(f"RoomNodeActor does not handle {kind.__name__}")


class RoomGateway:
    def __init__(
        self,
        *,
        system: ActorSystem,
        sessions: SessionLookup,
        persist: Callable[[dict[str, Any]], None],
        load_battle: LoadBattle,
        idle_s: float,
        lease_s: float,
        directory: RoomDirectory | None = None,
        max_rooms: int = MAX_LOCAL_ROOMS,
        snapshot: Callable[[RoomVersion, str], None] | None = None,
        snapshot_every_s: float = 0.0,
    ) -> None:
        self.system = system
        # RoomHost.snapshot: the node's snapshotter (None: room snapshots are not kept).
        self._snapshot = snapshot
        self.snapshot_every_s = snapshot_every_s
        self._sessions = sessions
        self.persist = persist  # RoomHost.persist: the node's replay flusher
        self._load_battle = load_battle
        self.idle_s = idle_s
        self.lease_s = lease_s
        self.directory = directory
        self.max_rooms = max_rooms
        self._schedulers: TickSchedulers | None = None
        # Rooms being located, created or waited for: their messages queue here, in order.
        self._queued: dict[str, list[RoomRequest]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        # Rooms that are stopping: resolved with True (stopped) or False (kept going).
        self._stopping: dict[str, asyncio.Future[bool]] = {}
        self._where: OrderedDict[str, str] = OrderedDict()
        self._relays: dict[str, ActorRef] = {}
        self.local_rooms: set[str] = set()
        self.dropped_deliveries = 0

    @property
    def node(self) -> str:
        return self.system.node

    # -- lifecycle -----------------------------------------------------------------------

    async def run(self) -> None:
        """Spawn the node's ``rooms`` actor, then renew this node's room leases forever."""
        await self.system.spawn(
            RoomNodeActor, self, name=ROOMS_NODE_ACTOR, mailbox_size=NODE_ACTOR_MAILBOX
        )
        directory = self.directory
        if directory is None:
            return
        while True:
            await asyncio.sleep(self.lease_s / 3)
            rooms = sorted(self.local_rooms)
            if not rooms:
                continue
            try:
                lost = await directory.renew(rooms)
            except Exception as exc:
                logger.warning("renewing %d room leases failed: %r", len(rooms), exc)
                continue
            for room in lost:
                ref = self.system.lookup(room_name(room))
                if ref is not None:
                    ref.tell(RoomLost())

    async def close(self) -> None:
        """Cancel routing tasks still running (at shutdown, after the actors stopped)."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    def stats(self) -> dict[str, Any]:
        schedulers = self._schedulers.rates() if self._schedulers is not None else {}
        return {
            "rooms": len(self.local_rooms),
            "schedulers": {
                rate: {"rooms": len(s), "wakeups": s.wakeups, "missed": s.missed}
                for rate, s in schedulers.items()
            },
            "dropped_deliveries": self.dropped_deliveries,
        }

    async def room_stats(self) -> list[dict[str, Any]]:
        """Every local room's ``RoomCore.stats()`` (asks each room)."""
        out = []
        for room in sorted(self.local_rooms):
            ref = self.system.lookup(room_name(room))
            if ref is None:
                continue
            with contextlib.suppress(Exception):
                out.append(await ref.ask(RoomStatsReq(), timeout=1.0))
        return out

    # -- from players (PlayerHost) ---------------------------------------------------------

    async def room_message(self, player_id: str, session_id: str, msg: p.ClientMessage) -> None:
        """A player's room message (its actor checked membership): on to the room."""
        if type(msg) is p.Join:
            create = msg.create
            if create is not None and create.sim is not None:
                try:
                    get_sim(create.sim)
                except KeyError:
                    known = ", ".join(sim_names()) or "none"
                    await self._reply(
                        RoomRequest(player_id, self.node, session_id, msg),
                        p.Error(
                            code=p.INVALID,
                            message=f"unknown sim {create.sim[:64]!r} (known: {known})",
                            field="create.sim",
                            re=msg.id,
                        ),
                    )
                    return
        await self.route(
            RoomRequest(player_id, self.node, session_id, cast(RoomClientMessage, msg))
        )

    async def left_rooms(self, player_id: str, rooms: Sequence[str]) -> None:
        """The player's session ended: leave every room quietly."""
        for room in rooms:
            await self.route(RoomRequest(player_id, self.node, "", p.Leave(room=room), quiet=True))

    # -- routing -------------------------------------------------------------------------

    async def route(self, req: RoomRequest) -> None:
        """Hand ``req`` to its room, wherever it is (never waits on I/O)."""
        room = req.msg.room
        queued = self._queued.get(room)
        if queued is not None:
            queued.append(req)
            return
        if room not in self._stopping:
            ref = self.system.lookup(room_name(room))
            if ref is not None:
                await self._tell(ref, req)
                return
            if type(req.msg) is not p.Join:
                node = self._where.get(room)
                if node is not None and req.hops == 0:
                    self._forward(node, req)
                    return
                if self.directory is None or req.hops > 0:
                    await self._not_in_room(req)
                    return
        self._queued[room] = [req]
        task = asyncio.get_running_loop().create_task(  # owned by RoomGateway._tasks
            self._resolve(room), name=f"room-route-{room}"
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _resolve(self, room: str) -> None:
        """Work through the room's queue in order (locating/creating the room as needed)."""
        try:
            while True:
                queue = self._queued.get(room)
                if not queue:
                    return
                req = queue.pop(0)
                try:
                    await self._route_slow(room, req)
                except Exception:
                    logger.exception("routing a %s to room %s failed", type(req.msg).__name__, room)
                    if not req.quiet:
                        await self._reply(
                            req,
                            p.Error(
                                code=p.INTERNAL,
                                message=f"room {room} is unavailable; retry",
                                re=req.msg.id,
                            ),
                        )
        finally:
            # No await since the empty check: nothing was queued after it.
            self._queued.pop(room, None)

    async def _route_slow(self, room: str, req: RoomRequest) -> None:
        stopping = self._stopping.get(room)
        if stopping is not None:
            await asyncio.shield(stopping)
        ref = self.system.lookup(room_name(room))
        if ref is not None:
            await self._tell(ref, req)
            return
        is_join = type(req.msg) is p.Join
        if is_join and len(self.local_rooms) >= self.max_rooms:
            await self._reply(
                req,
                p.Error(
                    code=p.BUSY,
                    message="this node hosts too many rooms; retry later",
                    re=req.msg.id,
                ),
            )
            return
        directory = self.directory
        if directory is None:
            if is_join:
                await self._tell(await self._create(room, req, restore=None), req)
            else:
                await self._not_in_room(req)
            return
        for _ in range(CLAIM_ATTEMPTS):
            owner = await directory.owner(room)
            if owner is not None and owner != self.node:
                self._remember(room, owner)
                if req.hops >= MAX_ROUTE_HOPS:
                    break
                self._forward(owner, req)
                return
            if not is_join:
                await self._not_in_room(req)
                return
            if await directory.claim(room):
                restore = None
                battle_id = await directory.battle(room)
                if battle_id is not None:
                    # Its previous node died mid-battle: continue from the replay log.
                    restore = await self._load_battle(battle_id)
                ref = await self._create(room, req, restore=restore)
                await self._tell(ref, req)
                return
        raise RuntimeError(f"room {room}: could not locate or claim it")

    async def _create(
        self, room: str, req: RoomRequest, *, restore: RestoredBattle | None
    ) -> ActorRef:
        if restore is not None:
            config = restore.config
            core = RoomCore(
                config,
                battle_id=restore.battle_id,
                sim=get_sim(config.sim),
                next_tick=restore.next_tick,
                sim_state=restore.sim_state,
                history=restore.history,
            )
            logger.info(
                "room %s re-created from its replay log at tick %d (battle %s)",
                room, restore.next_tick, restore.battle_id,
            )  # fmt: skip
        else:
            config = RoomConfig.create(room, req.msg.create)  # type: ignore[union-attr]
            battle_id = secrets.token_hex(BATTLE_ID_BYTES)
            core = RoomCore(config, battle_id=battle_id, sim=get_sim(config.sim))
            if self.directory is not None:
                await self.directory.start_battle(room, battle_id)
        ref = await self.system.spawn(
            RoomActor,
            RoomState(core),
            self,
            self.idle_s,
            self.snapshot_every_s,
            name=room_name(room),
            supervisor=ROOM_SUPERVISOR,
            mailbox_size=ROOM_MAILBOX,
        )
        self.local_rooms.add(room)
        self._where.pop(room, None)
        return ref

    async def _tell(self, ref: ActorRef, req: RoomRequest) -> None:
        try:
            ref.tell(req)
        except MailboxFull:
            if not req.quiet:
                await self._reply(
                    req,
                    p.Error(code=p.BUSY, message="the room is busy; retry shortly", re=req.msg.id),
                )

    def _forward(self, node: str, req: RoomRequest) -> None:
        """To ``node``'s ``rooms`` actor, which routes it to the room there."""
        try:
            self._relay(node).tell(msgspec.structs.replace(req, hops=req.hops + 1))
        except MailboxFull:
            self.dropped_deliveries += 1
            logger.warning("request for room %s to %s dropped: outbox full", req.msg.room, node)

    def _remember(self, room: str, node: str) -> None:
        where = self._where
        where[room] = node
        where.move_to_end(room)
        while len(where) > ROUTE_CACHE_MAX:
            where.popitem(last=False)

    def _relay(self, node: str) -> ActorRef:
        ref = self._relays.get(node)
        if ref is None:
            ref = self._relays[node] = self.system.ref_for(PID(node, ROOMS_NODE_ACTOR))
        return ref

    async def _not_in_room(self, req: RoomRequest) -> None:
        if req.quiet:
            return
        await self._reply(
            req,
            p.Error(
                code=p.INVALID,
                message=f"not in room {req.msg.room}",
                field="room",
                re=req.msg.id,
            ),
        )

    async def _reply(self, req: RoomRequest, msg: p.ServerMessage) -> None:
        await self.deliver(req.msg.room, {req.node: [(req.player_id, req.session_id)]}, msg)

    # -- RoomHost (rooms.ports), for the local room actors ------------------------------

    def time(self) -> float:
        return self.system.loop.time()

    def schedule(
        self, rate: int, room_id: str, target: TickTarget, first_tick: int
    ) -> Registration:
        if self._schedulers is None:
            self._schedulers = TickSchedulers(self.system.loop)
        return self._schedulers.add(rate, room_id, target, first_tick)

    def unschedule(self, rate: int, room_id: str) -> None:
        if self._schedulers is not None:
            self._schedulers.remove(rate, room_id)

    async def deliver(
        self, room_id: str, by_node: Mapping[str, Sequence[Target]], msg: p.ServerMessage
    ) -> None:
        for node, targets in by_node.items():
            if node == self.node:
                await self.deliver_local(targets, msg)
                continue
            try:
                self._relay(node).tell(RoomDeliver(room_id, list(targets), msg))  # type: ignore[arg-type]
            except MailboxFull:
                self.dropped_deliveries += 1
                logger.warning("room %s: delivery to %s dropped (outbox full)", room_id, node)
            except Exception:
                self.dropped_deliveries += 1
                logger.exception("room %s: delivery to %s failed", room_id, node)

    async def deliver_local(self, targets: Sequence[Target], msg: p.ServerMessage) -> None:
        """Write ``msg`` to each target's session (a copy each: a session numbers it)."""
        sessions = self._sessions
        replace = msgspec.structs.replace
        for player_id, session_id in targets:
            session = sessions(player_id)
            if session is None or session.session_id != session_id:
                continue  # gone, or a newer session that has not joined (yet)
            await session.emit(replace(msg))

    def idle(self, room_id: str) -> None:
        """Stop routing to the room; it stops on ``IdleConfirm`` unless a member came."""
        if room_id not in self._stopping:
            self._stopping[room_id] = asyncio.get_running_loop().create_future()
        ref = self.system.lookup(room_name(room_id))
        if ref is None:
            return
        try:
            ref.tell(IdleConfirm())
        except MailboxFull:
            self._settle(room_id, stopped=False)  # busy, so not idle: try again later

    def snapshot(self, version: RoomVersion, reason: str) -> None:
        if self._snapshot is not None:
            self._snapshot(version, reason)

    def idle_cancelled(self, room_id: str) -> None:
        self._settle(room_id, stopped=False)

    def stopping(self, room_id: str) -> None:
        if room_id not in self._stopping:
            self._stopping[room_id] = asyncio.get_running_loop().create_future()

    async def stopped(self, room_id: str, battle_id: str, *, ended: bool) -> None:
        self.local_rooms.discard(room_id)
        directory = self.directory
        if directory is not None:
            try:
                if ended:
                    await directory.end_battle(room_id, battle_id)
                await directory.release(room_id)
            except Exception as exc:  # the lease expires anyway
                logger.warning("releasing room %s failed: %r", room_id, exc)
        # The actor is unregistered right after on_stop returns: let queued messages go on
        # only then (they find no actor and create the room anew).
        asyncio.get_running_loop().call_soon(self._settle, room_id, True)

    def _settle(self, room_id: str, stopped: bool) -> None:
        future = self._stopping.pop(room_id, None)
        if future is not None and not future.done():
            future.set_result(stopped)

"""The node's gateway hub: sessions by id and by player, player actors, shutdown.

The hub is the players' host (``players.ports.PlayerHost``): it builds each PlayerActor
with itself as the host, so the actor reaches the session, the flush path and presence
only through that port. Everything here runs on the node's event loop; the only awaits
are socket writes, loading a player's stored record, and stopping actors.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

import gameproto as p
from actors import PID, ActorRef, ActorSystem
from gamebackend.gateway.directory import PlayerDirectory
from gamebackend.gateway.heartbeat import HeartbeatWheel
from gamebackend.gateway.session import Connection, Session
from gamebackend.gateway.sessionstore import SessionRecord, SessionStore
from gamebackend.gateway.sessionstore.record import decode_message
from gamebackend.players.actor import (
    PLAYER_SUPERVISOR,
    Attach,
    Detached,
    End,
    Handoff,
    PlayerActor,
    PlayerState,
    actor_name,
)
from gamebackend.players.ports import PlayerSession
from gamebackend.players.state import PlayerRecord

if TYPE_CHECKING:
    from gamebackend.gateway.rooms import RoomGateway

logger = logging.getLogger(__name__)

# Recently stopped players' last states, so a quick reconnect does not read a database
# row the flusher has not written yet.
RECENT_STATES_MAX = 10_000
# Channel-layer group that hears player.online/offline events from every node.
PRESENCE_GROUP = "game.presence"
ANNOUNCE_TIMEOUT_S = 0.5
# How long a node waits for another node to hand a player's live state over.
HANDOFF_TIMEOUT_S = 1.0


def _unchanged(session: Session) -> None:
    return None


def _resumable(record: SessionRecord, last_seq: int, outbox_max: int) -> bool:
    """Whether a client at ``last_seq`` can continue the stored session.

    Below ``acked_seq`` the messages are gone; above ``last_seq`` the client saw messages
    the old node did not write in time (the loss window), at most an outbox's worth.
    """
    return record.acked_seq <= last_seq <= record.last_seq + outbox_max


class KeyedLocks:
    """One asyncio.Lock per key, forgotten as soon as nobody holds or waits for it."""

    def __init__(self) -> None:
        # key -> [lock, holders and waiters]
        self._locks: dict[str, tuple[asyncio.Lock, list[int]]] = {}

    def __len__(self) -> int:
        return len(self._locks)

    @contextlib.asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        entry = self._locks.get(key)
        if entry is None:
            entry = self._locks[key] = (asyncio.Lock(), [0])
        lock, users = entry
        users[0] += 1
        try:
            async with lock:
                yield
        finally:
            users[0] -= 1
            if not users[0]:
                del self._locks[key]


class Hub:
    def __init__(
        self,
        *,
        system: ActorSystem,
        heartbeat: HeartbeatWheel,
        persist: Callable[[PlayerRecord], None],
        outbox_max: int,
        resume_grace_s: float,
        load_record: Callable[[str], Awaitable[PlayerRecord]],
        presence_layer: Any = None,
        directory: PlayerDirectory | None = None,
        on_stopped: Callable[[PlayerRecord], None] | None = None,
        on_started: Callable[[PlayerRecord], None] | None = None,
        store: SessionStore | None = None,
    ) -> None:
        self.system = system
        self.heartbeat = heartbeat
        self.persist = persist  # PlayerHost.persist: the node's batched flush path
        self.outbox_max = outbox_max
        self.resume_grace_s = resume_grace_s
        self._load_record = load_record
        self._presence_layer = presence_layer
        self.directory = directory
        # Told each stopped player's last version (the node's logout snapshots).
        self._on_stopped = on_stopped
        self._on_started = on_started  # told each player actor's first version
        # Sessions outlive the node (L1/L2, see gateway/sessionstore): resumable elsewhere.
        self.store = store
        # Room messages go here (set by the runtime; see gateway/rooms.py).
        self.rooms: RoomGateway | None = None
        self.sessions: dict[str, Session] = {}
        self.by_player: dict[str, Session] = {}
        self.connections: set[Connection] = set()
        self.accepting = True
        self._ending: set[str] = set()
        self._locks = KeyedLocks()
        self._recent: OrderedDict[str, PlayerRecord] = OrderedDict()
        # The live players' states (the actors' own objects), for the console to read.
        self.player_states: dict[str, PlayerState] = {}
        self._closing: set[asyncio.Task[None]] = set()

    # -- attaching a connection ---------------------------------------------------------

    async def attach(
        self, conn: Connection, *, player_id: str, resume_id: str | None, last_seq: int | None
    ) -> tuple[Session, ActorRef, bool]:
        """The session ``conn`` continues (resume) or starts; returns (session, actor, resumed).

        The caller accepts the socket, sends ``welcome``, then calls ``bind``.
        """
        async with self._locks.hold(player_id):
            return await self._attach(conn, player_id, resume_id, last_seq)

    async def _attach(
        self, conn: Connection, player_id: str, resume_id: str | None, last_seq: int | None
    ) -> tuple[Session, ActorRef, bool]:
        current = self.by_player.get(player_id)
        if (
            resume_id is not None
            and last_seq is not None
            and current is not None
            and current.session_id == resume_id
            and current.outbox.replay_after(last_seq) is not None
        ):
            current.changed(current)  # the resume acknowledged up to last_seq
            await self._replace_connection(current)
            ref, _ = await self._player_actor(player_id)
            return current, ref, True
        if current is not None:
            # A new session replaces the player's old one, which ends (not resumable).
            self._forget_session(current)
            await self._replace_connection(current)
        ref, handed_off = await self._player_actor(player_id)
        if (
            resume_id is not None
            and last_seq is not None
            and self.store is not None
            and (current is None or current.session_id != resume_id)
        ):
            # Not live here: the session may live on in L2 (another node, or this node
            # before a restart). Read after the handoff, which seals the previous copy.
            restored = await self._restore(player_id, resume_id, last_seq, handed_off)
            if restored is not None:
                return restored, ref, True
        session = Session(
            player_id=player_id,
            outbox_max=self.outbox_max,
            on_overflow=self.session_overflow,
            changed=self.store.changed if self.store is not None else _unchanged,
        )
        self.sessions[session.session_id] = session
        self.by_player[player_id] = session
        if self.store is not None:
            self.store.started(session)
        return session, ref, False

    async def _restore(
        self, player_id: str, session_id: str, last_seq: int, handed_off: bool
    ) -> Session | None:
        """Continue ``session_id`` from its L2 record, or None when it cannot resume.

        The client may have seen messages the record does not hold yet (written within
        the loss window before the old node died): they are not replayed, and numbering
        goes on after the client's ``last_seq`` (docs/PROTOCOL.md).
        """
        store = self.store
        assert store is not None
        try:
            record = await store.load(session_id, player_id, after_handoff=handed_off)
        except Exception as exc:  # L2 unreachable: a fresh session, the state is kept
            logger.warning("session %s: L2 read failed: %r", session_id, exc)
            return None
        if record is None or not _resumable(record, last_seq, self.outbox_max):
            return None
        items = [decode_message(frame) for frame in record.items]
        items = [msg for msg in items if msg.seq > last_seq]
        if len(items) > self.outbox_max:
            return None  # kept under a larger GAME_OUTBOX_MAX than this node's
        session = Session(
            player_id=player_id,
            outbox_max=self.outbox_max,
            on_overflow=self.session_overflow,
            changed=store.changed,
            session_id=session_id,
        )
        session.outbox.restore(
            acked_seq=last_seq,
            last_seq=max(record.last_seq, last_seq),
            items=items,
        )
        session.restored = True
        self.sessions[session_id] = session
        self.by_player[player_id] = session
        await store.adopted(session)
        return session

    async def bind(
        self, session: Session, conn: Connection, ref: ActorRef, *, resumed: bool, after_seq: int
    ) -> None:
        await session.bind(conn, after_seq=after_seq)
        # A session restored from L2 has a new actor here: the client gets the full state
        # once, after the replayed messages.
        fresh = not resumed or session.restored
        session.restored = False
        ref.tell(Attach(session, fresh=fresh))

    def _release(self, conn: Connection) -> None:
        """Stop serving ``conn``: no heartbeat, not closed at shutdown."""
        self.connections.discard(conn)
        self.heartbeat.remove(conn)

    def _take_connection(self, session: Session) -> Connection | None:
        """Unbind the session's socket (its later disconnect then changes nothing)."""
        conn, session.conn = session.conn, None
        if conn is not None:
            conn.session = None
            self._release(conn)
        return conn

    async def _replace_connection(self, session: Session) -> None:
        old = self._take_connection(session)
        if old is not None:
            await old.close_with(p.CloseCode.REPLACED, "replaced by a newer connection")

    async def _player_actor(self, player_id: str) -> tuple[ActorRef, bool]:
        """The player's actor here, spawned if needed; and whether another node handed the
        player over just now."""
        name = actor_name(player_id)
        if player_id in self._ending:
            # Its on_stop must finish (and leave its last state here) before a successor.
            await self.system.stop(name)
            self._ending.discard(player_id)
        ref = self.system.lookup(name)
        if ref is not None:
            return ref, False
        record = self._recent.pop(player_id, None)
        handed_off = False
        if self.directory is not None:
            previous = await self.directory.claim(player_id)
            if previous is not None:
                handed = await self._take_over(player_id, previous)
                handed_off = handed is not None
                # Another node held the player after this one: a state this node kept is
                # older than that node's, so without a handoff the database is newer.
                record = handed
        if record is None:
            record = await self._load_record(player_id)
        state = PlayerState(record)
        ref = await self.system.spawn(
            PlayerActor, state, self, name=name, supervisor=PLAYER_SUPERVISOR
        )
        self.player_states[player_id] = state
        if self._on_started is not None:
            self._on_started(record)
        return ref, handed_off

    async def _take_over(self, player_id: str, node: str) -> PlayerRecord | None:
        """Ask the player's actor on ``node`` for the live state (it closes 4409 and stops)."""
        try:
            await self.system.start()  # the remote receive loops (idempotent)
            ref = self.system.ref_for(PID(node, actor_name(player_id)))
            record = await ref.ask(Handoff(to_node=self.system.node), timeout=HANDOFF_TIMEOUT_S)
        except Exception as exc:  # gone, stopped, or its node is down: use the database
            logger.info("player %s: no handoff from %s (%r)", player_id, node, exc)
            return None
        if not isinstance(record, PlayerRecord):
            logger.warning("player %s: unexpected handoff reply from %s", player_id, node)
            return None
        return record

    # -- PlayerHost (players.ports): called by the player actors ---------------------------

    def moved(self, session: PlayerSession, to_node: str) -> None:
        """The player connected to another node, which took their state over."""
        assert isinstance(session, Session)
        if self.store is not None:
            self.store.sealed(session)  # the new node waits for this final record
        self._forget_session(session, keep_stored=True)
        conn = self._take_connection(session)
        if conn is not None:
            self._spawn_close(conn, f"moved to {to_node}")

    def session_invalidated(self, session_id: str) -> None:
        """Another node resumed ``session_id``: a copy still live here is stale; drop it."""
        session = self.sessions.get(session_id)
        if session is None:
            return
        logger.info("session %s resumed on another node: dropping this copy", session_id)
        conn = self._take_connection(session)
        self._end(session, keep_stored=True)
        if conn is not None:
            self._spawn_close(conn, "resumed on another node")

    def grace_expired(self, session: PlayerSession, epoch: int) -> None:
        """The resume grace passed; end the session unless it reconnected meanwhile."""
        assert isinstance(session, Session)
        if session.conn is None and session.detach_epoch == epoch and not session.ended:
            self._end(session)

    async def room_message(self, player_id: str, session_id: str, msg: p.ClientMessage) -> None:
        if self.rooms is not None:
            await self.rooms.room_message(player_id, session_id, msg)

    async def left_rooms(self, player_id: str, rooms: Sequence[str]) -> None:
        if self.rooms is not None:
            await self.rooms.left_rooms(player_id, rooms)

    def _spawn_close(self, conn: Connection, reason: str) -> None:
        # Called from an actor handler, which must not wait on a socket: the close is a
        # task of its own, kept until done.
        task = asyncio.get_running_loop().create_task(  # owned by Hub._closing
            conn.close_with(p.CloseCode.REPLACED, reason)
        )
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    # -- detaching ----------------------------------------------------------------------

    def detach(self, conn: Connection, session: Session, *, ends_session: bool) -> None:
        """``conn`` closed: end the session, or keep it resumable for the grace period."""
        self._release(conn)
        if session.conn is not conn:
            return  # already replaced by a newer connection
        session.conn = None
        if ends_session or session.ended:
            self._end(session)
            return
        session.detach_epoch += 1
        ref = self.system.lookup(actor_name(session.player_id))
        if ref is not None:
            ref.tell(Detached(session, session.detach_epoch, self.resume_grace_s))

    async def session_overflow(self, session: Session) -> None:
        """The client stopped acknowledging: close 4413, the session is not resumable."""
        conn = session.conn
        self._end(session)
        if conn is not None:
            await conn.close_with(p.CloseCode.OUTBOX_FULL, "too many unacknowledged messages")

    async def kick(self, session: Session, reason: str) -> None:
        """An operator ends the session: close 4000 with their reason; not resumable."""
        conn = session.conn
        self._end(session)
        if conn is not None:
            await conn.close_with(p.CloseCode.KICKED, reason)

    # -- for the console (read on the event loop) ---------------------------------------

    def live_record(self, player_id: str) -> dict[str, Any] | None:
        state = self.player_states.get(player_id)
        if state is None:
            return None
        return {**state.record.to_json(), "rooms": list(state.rooms)}

    def rooms_of(self, player_id: str) -> list[str]:
        state = self.player_states.get(player_id)
        return [] if state is None else list(state.rooms)

    def _forget_session(self, session: Session, *, keep_stored: bool = False) -> None:
        """Drop the session here; unless ``keep_stored`` (it lives on elsewhere) it ends
        in L2 too (not resumable anywhere)."""
        if self.store is not None and not keep_stored:
            self.store.ended(session)
        session.ended = True
        self.sessions.pop(session.session_id, None)
        if self.by_player.get(session.player_id) is session:
            del self.by_player[session.player_id]

    def _end(self, session: Session, *, keep_stored: bool = False) -> None:
        if session.ended:
            return  # ended before (replaced, expired or overflowed)
        self._forget_session(session, keep_stored=keep_stored)
        if session.player_id in self.by_player:
            return  # a newer session of the player keeps the actor
        ref = self.system.lookup(actor_name(session.player_id))
        if ref is not None:
            self._ending.add(session.player_id)
            ref.tell(End())

    async def stopped(self, record: PlayerRecord) -> None:
        """A player's actor ran on_stop: keep its last state, announce ``player.offline``."""
        player_id = record.player_id
        self.player_states.pop(player_id, None)
        if self._on_stopped is not None:
            self._on_stopped(record)
        recent = self._recent
        recent[player_id] = record
        recent.move_to_end(player_id)
        while len(recent) > RECENT_STATES_MAX:
            recent.popitem(last=False)
        if self.directory is not None:
            try:
                await self.directory.release(player_id)
            except Exception as exc:  # the entry expires or is taken over anyway
                logger.warning("releasing player %s failed: %r", player_id, exc)
        await self._announce({"type": "player.offline", "player_id": player_id})
        # on_stop ends right after this returns and the actor is unregistered in the same
        # step; forget the "ending" mark only then, so a reconnect in between still waits.
        asyncio.get_running_loop().call_soon(self._ending.discard, player_id)

    async def _announce(self, event: dict[str, Any]) -> None:
        """Tell every node's presence listeners (channel-layer group; lossy by design)."""
        layer = self._presence_layer
        if layer is None:
            return
        try:
            async with asyncio.timeout(ANNOUNCE_TIMEOUT_S):
                await layer.group_send(PRESENCE_GROUP, event)
        except Exception as exc:
            # Presence is advisory: a slow or absent layer must not hold up a stop.
            logger.warning("announcing %s failed: %r", event["type"], exc)

    # -- shutdown -----------------------------------------------------------------------

    async def shutdown(self, timeout: float) -> None:  # noqa: ASYNC109 - a deadline, not I/O
        """Refuse new upgrades, close every socket with 1001, stop every actor (on_stop)."""
        self.accepting = False
        conns = list(self.connections)
        for conn in conns:
            try:
                await conn.close_with(p.CloseCode.GOING_AWAY, "server shutting down")
            except Exception:
                logger.exception("closing a connection at shutdown failed")
        logger.info("gateway: closed %d connections; stopping actors", len(conns))
        await self.system.shutdown(timeout=timeout)

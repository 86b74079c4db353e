"""The node's gateway runtime: one per process, created on the serving event loop.

It owns the actor system, the hub, the room gateway, the heartbeat and metrics tasks, and
the state and replay flushers; the server calls ``runtime_shutdown`` before it closes what
is left (see gamebackend/server/lifecycle.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings

from actors import ActorSystem
from gamebackend.events.bus import ALL, DomainEvent, EventBus
from gamebackend.events.fanout import EventFanout
from gamebackend.events.forwarder import EventForwarder
from gamebackend.flow.admission import flow_reset, node_flow
from gamebackend.gateway.console_report import ConsoleReport
from gamebackend.gateway.directory import PlayerDirectory
from gamebackend.gateway.heartbeat import HeartbeatWheel
from gamebackend.gateway.hub import Hub
from gamebackend.gateway.metrics_sampler import MetricsSampler
from gamebackend.gateway.replay import DurableReplayStore, RedisReplayStore
from gamebackend.gateway.rooms import RoomGateway
from gamebackend.gateway.sessionstore import L2, SessionStore
from gamebackend.gateway.sessionstore.invalidation import RedisInvalidator
from gamebackend.gateway.sessionstore.redis_l2 import RedisL2, redis_client
from gamebackend.gateway.sessionstore.sqlite_l2 import SqliteL2
from gamebackend.gateway.snapshotter import Snapshotter
from gamebackend.gateway.tickets import ReplayStore
from gamebackend.metrics.series import series_store
from gamebackend.players.flush import FlushBuffer, register_node_buffer
from gamebackend.players.journal import FlushJournal
from gamebackend.players.services import player_record_load
from gamebackend.players.state import PlayerRecord
from gamebackend.rooms.directory import RoomDirectory
from gamebackend.rooms.flush import ReplayFlusher
from gamebackend.rooms.selectors import RestoredBattle, battle_restore

logger = logging.getLogger(__name__)

# The single-machine profile's journal of used ticket ids, under GAME_VAR_DIR.
TICKET_JOURNAL_FILE = "tickets.sqlite3"
# The single-machine profile's L2 of sessions, under GAME_VAR_DIR.
SESSION_FILE = "sessions.sqlite3"
# The flush journal of one server process (docs/DURABILITY.md), under GAME_VAR_DIR.
FLUSH_JOURNAL_DIR = "flush"
# The shutdown drain waits this long at most for the worker to commit the last batches
# (and at least FLUSH_DRAIN_MIN_S); what is left stays journaled for the next start.
FLUSH_DRAIN_MAX_S = 3.0
FLUSH_DRAIN_MIN_S = 0.5


class Runtime:
    def __init__(self) -> None:
        # In the cluster profile actors on other nodes are reachable through the shared
        # channel layer; a single machine has no other node to reach.
        self.system = ActorSystem(
            node=settings.GAME_NODE_ID,
            default_mailbox_size=settings.GAME_MAILBOX_SIZE,
            channel_layer=get_channel_layer() if settings.REDIS_URL else None,
        )
        self.heartbeat = HeartbeatWheel(settings.GAME_HEARTBEAT_S, settings.GAME_HEARTBEAT_MISSES)
        self.flow = node_flow()
        # Enqueueing goes through the celery.enqueue breaker: a dead broker fails fast and
        # the buffer keeps the versions until it is back.
        breakers = self.flow.enforcement.breakers
        self.flusher = FlushBuffer(
            journal=FlushJournal(flush_journal_path()),
            guard=breakers.breaker("celery.enqueue").call,
            batch=settings.GAME_FLUSH_BATCH,
            window_s=settings.GAME_FLUSH_MS / 1000.0,
            max_entities=settings.GAME_FLUSH_BUFFER_MAX,
            redeliver_s=settings.GAME_FLUSH_REDELIVER_S,
        )
        # Domain events: the in-process bus, and its durable handler (the event log).
        self.events = EventBus(
            workers=settings.GAME_EVENT_WORKERS, queue_max=settings.GAME_EVENT_QUEUE_MAX
        )
        self.event_forwarder = EventForwarder(guard=breakers.breaker("celery.enqueue").call)
        self.events.subscribe(ALL, self.event_forwarder)
        # Cluster: this node's events reach the other nodes' buses, batched over the
        # channel layer (events/fanout.py).
        self.event_fanout: EventFanout | None = None
        if settings.REDIS_URL:
            self.event_fanout = EventFanout(
                bus=self.events, layer=get_channel_layer(), node=settings.GAME_NODE_ID
            )
            self.events.subscribe(ALL, self.event_fanout)
        self.snapshotter = Snapshotter(
            every_s=settings.GAME_SNAPSHOT_EVERY_S, guard=breakers.breaker("celery.enqueue").call
        )
        self.replay_flusher = ReplayFlusher(guard=breakers.breaker("celery.enqueue").call)
        # The serving loop (set by start): threads reach live actors through it.
        self.loop: asyncio.AbstractEventLoop | None = None
        self.replay_store: ReplayStore
        directory: PlayerDirectory | None = None
        room_directory: RoomDirectory | None = None
        self.invalidator: RedisInvalidator | None = None
        l2: L2
        if settings.GAME_SESSION_REDIS_URL:
            l2 = RedisL2(
                redis_client(
                    settings.GAME_SESSION_REDIS_URL, cluster=settings.GAME_SESSION_REDIS_CLUSTER
                ),
                ttl_s=settings.GAME_SESSION_L2_TTL_S,
            )
        else:
            l2 = SqliteL2(
                settings.GAME_VAR_DIR / SESSION_FILE, ttl_s=settings.GAME_SESSION_L2_TTL_S
            )
        self.sessions = SessionStore(
            l2,
            node_id=settings.GAME_NODE_ID,
            l1_size=settings.GAME_SESSION_L1_SIZE,
            l1_ttl_s=settings.GAME_SESSION_L1_TTL_S,
            flush_s=settings.GAME_SESSION_FLUSH_MS / 1000,
        )
        if not settings.REDIS_URL:
            # Used tickets outlive a restart of the node (see DurableReplayStore).
            self.replay_store = DurableReplayStore(settings.GAME_VAR_DIR / TICKET_JOURNAL_FILE)
        else:
            import redis.asyncio as aioredis

            # Tickets' jti and the player and room directories are cluster-wide: they
            # live in Redis.
            client = aioredis.from_url(settings.REDIS_URL)
            self.replay_store = RedisReplayStore(client)
            directory = PlayerDirectory(client, settings.GAME_NODE_ID)
            room_directory = RoomDirectory(
                client, settings.GAME_NODE_ID, settings.GAME_ROOM_LEASE_S
            )
            # Session moves are announced on the channel layer's Redis (L1 invalidation).
            self.invalidator = RedisInvalidator(
                client, settings.GAME_NODE_ID, self._session_invalidated
            )
            self.sessions.invalidator = self.invalidator
        self.hub = Hub(
            system=self.system,
            heartbeat=self.heartbeat,
            persist=self._persist,
            outbox_max=settings.GAME_OUTBOX_MAX,
            resume_grace_s=settings.GAME_RESUME_GRACE_S,
            load_record=self._load_record,
            presence_layer=get_channel_layer(),
            directory=directory,
            on_stopped=self._player_stopped,
            on_started=self._player_started,
            store=self.sessions,
        )
        self.rooms = RoomGateway(
            system=self.system,
            sessions=self.hub.by_player.get,
            persist=self.replay_flusher.add,
            load_battle=_load_battle,
            idle_s=settings.GAME_ROOM_IDLE_S,
            lease_s=settings.GAME_ROOM_LEASE_S,
            directory=room_directory,
            snapshot=self.snapshotter.room,
            snapshot_every_s=settings.GAME_SNAPSHOT_EVERY_S,
        )
        self.hub.rooms = self.rooms
        self.sampler = MetricsSampler(
            system=self.system,
            enforcement=self.flow.enforcement,
            flusher=self.flusher,
            connections=lambda: len(self.hub.connections),
            sessions=lambda: len(self.hub.sessions),
            room_stats=self.rooms.room_stats,
        )
        # The console's view of this process; it drives the metrics sampler too.
        self.report = ConsoleReport(
            self, series_store(settings.REDIS_URL), threaded=bool(settings.REDIS_URL)
        )
        self.blocks = self.report.blocks
        self._tasks: set[asyncio.Task[None]] = set()
        self._heartbeat_task: asyncio.Task[None] | None = None
        self._sampler_task: asyncio.Task[None] | None = None
        self._snapshot_task: asyncio.Task[None] | None = None
        self._events_task: asyncio.Task[None] | None = None
        self._rooms_task: asyncio.Task[None] | None = None
        self._closed = False

    def _persist(self, record: PlayerRecord) -> None:
        # PlayerHost.persist: every new version to the flush buffer; the snapshotter
        # keeps a reference for the next periodic snapshot (both O(1) dict stores).
        self.flusher.add(record)
        self.snapshotter.changed(record)

    def publish(self, event_type: str, **data: object) -> bool:
        """Publish a domain event on this node's bus (never blocks; False if dropped)."""
        return self.events.publish(
            DomainEvent(type=event_type, data=dict(data), node=settings.GAME_NODE_ID)
        )

    def _player_started(self, record: PlayerRecord) -> None:
        self.publish("player.online", player_id=record.player_id, lsn=record.lsn)

    def _player_stopped(self, record: PlayerRecord) -> None:
        self.snapshotter.stopped(record)
        self.publish("player.offline", player_id=record.player_id, lsn=record.lsn)

    def _session_invalidated(self, session_id: str) -> None:
        self.sessions.invalidate(session_id)
        self.hub.session_invalidated(session_id)

    def start(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.events.start()
        register_node_buffer(self.flusher)
        self.sessions.start()
        if self.invalidator is not None:
            self.invalidator.start()
        self.flusher.start()
        if isinstance(self.replay_store, DurableReplayStore):
            self.replay_store.start()
        self.replay_flusher.start()
        # The node's `rooms` actor, then the room lease renewals (cluster profile).
        self._rooms_task = asyncio.get_running_loop().create_task(  # owned by Runtime
            self.rooms.run(), name="rooms", context=contextvars.Context()
        )
        # A fresh context: the first caller may be a request whose context must not leak
        # into a task that lives as long as the process.
        loop = asyncio.get_running_loop()
        self._heartbeat_task = loop.create_task(  # owned by Runtime
            self.heartbeat.run(), name="gateway-heartbeat", context=contextvars.Context()
        )
        self._sampler_task = loop.create_task(  # owned by Runtime
            self.report.run(), name="gateway-console-report", context=contextvars.Context()
        )
        self._snapshot_task = loop.create_task(  # owned by Runtime
            self.snapshotter.run(), name="snapshots", context=contextvars.Context()
        )
        self._events_task = loop.create_task(  # owned by Runtime
            self.event_forwarder.run(), name="event-log", context=contextvars.Context()
        )
        if self.event_fanout is not None:
            self.event_fanout.start()

    def spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        """A short task of the runtime's (e.g. a console command); cancelled at shutdown."""
        task = asyncio.get_running_loop().create_task(  # owned by Runtime._tasks
            coro, name=name, context=contextvars.Context()
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def shutdown(self, timeout: float) -> None:  # noqa: ASYNC109 - a deadline
        if self._closed:
            return
        self._closed = True
        deadline = time.monotonic() + timeout
        self.snapshotter.closing = True  # the players stopped now get `shutdown` snapshots
        await self.hub.shutdown(timeout)
        # After the hub: the sessions its drain left stay resumable (written to L2 here).
        if self.invalidator is not None:
            await self.invalidator.close()
        await self.sessions.close()
        await self.rooms.close()
        # Drain: what the actors handed over is sent and, within what is left of the
        # deadline, committed; the rest stays journaled for the next start.
        left = min(FLUSH_DRAIN_MAX_S, deadline - time.monotonic())
        await self.flusher.close(max(FLUSH_DRAIN_MIN_S, left))
        register_node_buffer(None)
        await self.snapshotter.send_queued()
        await self.events.close()
        await self.event_forwarder.flush()
        if self.event_fanout is not None:
            await self.event_fanout.close()
        await self.replay_store.close()
        await self.replay_flusher.close()
        await self.flow.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for name in (
            "_heartbeat_task",
            "_rooms_task",
            "_sampler_task",
            "_snapshot_task",
            "_events_task",
        ):
            task = getattr(self, name)
            setattr(self, name, None)
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def _load_record(self, player_id: str) -> PlayerRecord:
        """The stored record, unless this node holds a newer unconfirmed version (e.g. a
        batch journaled before a restart that the worker has not committed yet)."""
        stored = await player_record_load(player_id=player_id)
        held = await self.flusher.newest(player_id)
        return held if held is not None and held.lsn > stored.lsn else stored


def flush_journal_path() -> Path:
    """One journal per server process: processes of a node never share one."""
    name = f"{settings.GAME_NODE_ID}.sqlite3".replace("/", "_")
    return settings.GAME_VAR_DIR / FLUSH_JOURNAL_DIR / name


async def _load_battle(battle_id: str) -> RestoredBattle | None:
    # A database read plus re-running the simulation: in a thread, off the event loop.
    return await sync_to_async(battle_restore, thread_sensitive=False)(battle_id=battle_id)


_runtime: Runtime | None = None


def get_runtime() -> Runtime:
    """The process's runtime, started on first use (on the serving event loop)."""
    global _runtime
    if _runtime is None:
        _runtime = Runtime()
        _runtime.start()
    return _runtime


async def runtime_shutdown(timeout: float) -> None:  # noqa: ASYNC109 - a deadline
    """Shut the gateway down; it stays in place, refusing upgrades, until the process ends."""
    if _runtime is not None:
        await _runtime.shutdown(timeout)


async def runtime_reset(timeout: float = 5.0) -> None:  # noqa: ASYNC109 - a deadline
    """Shut down and forget the runtime (tests that run the app on several event loops)."""
    global _runtime
    runtime, _runtime = _runtime, None
    if runtime is not None:
        await runtime.shutdown(timeout)
    await flow_reset()

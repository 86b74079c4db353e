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
from collections.abc import Coroutine
from typing import Any

from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings

from actors import ActorSystem
from gamebackend.flow.admission import flow_reset, node_flow
from gamebackend.gateway.console_report import ConsoleReport
from gamebackend.gateway.directory import PlayerDirectory
from gamebackend.gateway.heartbeat import HeartbeatWheel
from gamebackend.gateway.hub import Hub
from gamebackend.gateway.metrics_sampler import MetricsSampler
from gamebackend.gateway.replay import DurableReplayStore, RedisReplayStore
from gamebackend.gateway.rooms import RoomGateway
from gamebackend.gateway.tickets import ReplayStore
from gamebackend.metrics.series import series_store
from gamebackend.players.flush import StateFlusher
from gamebackend.players.services import player_record_load
from gamebackend.players.state import PlayerRecord
from gamebackend.rooms.directory import RoomDirectory
from gamebackend.rooms.flush import ReplayFlusher
from gamebackend.rooms.selectors import RestoredBattle, battle_restore

logger = logging.getLogger(__name__)

# The single-machine profile's journal of used ticket ids, under GAME_VAR_DIR.
TICKET_JOURNAL_FILE = "tickets.sqlite3"


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
        # the flusher keeps the states until it is back.
        breakers = self.flow.enforcement.breakers
        self.flusher = StateFlusher(guard=breakers.breaker("celery.enqueue").call)
        self.replay_flusher = ReplayFlusher(guard=breakers.breaker("celery.enqueue").call)
        self.replay_store: ReplayStore
        directory: PlayerDirectory | None = None
        room_directory: RoomDirectory | None = None
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
        self.hub = Hub(
            system=self.system,
            heartbeat=self.heartbeat,
            persist=self.flusher.add,
            outbox_max=settings.GAME_OUTBOX_MAX,
            resume_grace_s=settings.GAME_RESUME_GRACE_S,
            load_record=_load_record,
            presence_layer=get_channel_layer(),
            directory=directory,
        )
        self.rooms = RoomGateway(
            system=self.system,
            sessions=self.hub.by_player.get,
            persist=self.replay_flusher.add,
            load_battle=_load_battle,
            idle_s=settings.GAME_ROOM_IDLE_S,
            lease_s=settings.GAME_ROOM_LEASE_S,
            directory=room_directory,
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
        self._rooms_task: asyncio.Task[None] | None = None
        self._closed = False

    def start(self) -> None:
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
        await self.hub.shutdown(timeout)
        await self.rooms.close()
        await self.flusher.close()
        await self.replay_store.close()
        await self.replay_flusher.close()
        await self.flow.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for name in ("_heartbeat_task", "_rooms_task", "_sampler_task"):
            task = getattr(self, name)
            setattr(self, name, None)
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task


async def _load_record(player_id: str) -> PlayerRecord:
    return await player_record_load(player_id=player_id)


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

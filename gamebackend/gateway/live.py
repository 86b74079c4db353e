"""The gateway's side of ``players.live``: where a player is online, and reaching the
live actor from a thread or another process (console, ``snapshot`` command, tasks).

* In the process that serves the player (its runtime's hub holds them), calls go onto
  the serving event loop (``run_coroutine_threadsafe``) and into the actor's mailbox.
* In the cluster profile the player directory (Redis) names the node; the message goes
  to that node's actor over the channel layer, from a short-lived actor system of this
  process (``ask``: the reply is the version the actor holds afterwards).
* On a single machine a process without the runtime (the ``snapshot`` command) cannot
  see the node's players: they count as offline there (docs/DURABILITY.md).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from typing import Any

from asgiref.sync import async_to_sync
from django.conf import settings

from actors import PID, ActorSystem
from gamebackend.gateway.directory import KEY_PREFIX
from gamebackend.players.actor import Current, Restore, actor_name
from gamebackend.players.live import register_live_players
from gamebackend.players.state import PlayerRecord

logger = logging.getLogger(__name__)

# How long a restore or a read of the live state waits for the actor's answer.
LIVE_ASK_TIMEOUT_S = 3.0


def _local_runtime() -> Any:
    from gamebackend.gateway import runtime

    return runtime._runtime


class GatewayLivePlayers:
    def __init__(self) -> None:
        self._redis: Any = None

    def _directory_node(self, player_id: str) -> str | None:
        if not settings.REDIS_URL:
            return None
        if self._redis is None:
            import redis

            self._redis = redis.Redis.from_url(settings.REDIS_URL)
        value = self._redis.get(KEY_PREFIX + player_id)
        if value is None:
            return None
        return value.decode() if isinstance(value, bytes) else str(value)

    def where(self, player_id: str) -> str | None:
        runtime = _local_runtime()
        if runtime is not None and runtime.system.lookup(actor_name(player_id)) is not None:
            return str(settings.GAME_NODE_ID)
        return self._directory_node(player_id)

    def _ask(self, player_id: str, msg: Any) -> Any:
        runtime = _local_runtime()
        name = actor_name(player_id)
        if runtime is not None and runtime.loop is not None:
            ref = runtime.system.lookup(name)
            if ref is not None:
                coro = ref.ask(msg, timeout=LIVE_ASK_TIMEOUT_S)
                try:
                    asyncio.get_running_loop()
                except RuntimeError:
                    pass
                else:  # pragma: no cover - callers are sync code in threads
                    coro.close()
                    raise RuntimeError("call the live-player port from a thread, not the loop")
                future = asyncio.run_coroutine_threadsafe(coro, runtime.loop)
                return future.result(LIVE_ASK_TIMEOUT_S + 1.0)
        node = self._directory_node(player_id)
        if node is None:
            return None
        return async_to_sync(_remote_ask)(node, name, msg)

    def current(self, player_id: str) -> PlayerRecord | None:
        reply = self._ask(player_id, Current())
        return reply if isinstance(reply, PlayerRecord) else None

    def restore(self, record: PlayerRecord, *, floor: int) -> PlayerRecord | None:
        reply = self._ask(record.player_id, Restore(record=record, floor=floor))
        return reply if isinstance(reply, PlayerRecord) else None


async def _remote_ask(node: str, name: str, msg: Any) -> Any:
    from channels.layers import get_channel_layer

    # Its own node name (name@host:port, the port unused): replies come back to this
    # short-lived system only.
    node_name = f"live-{uuid.uuid4().hex[:12]}@{socket.gethostname()}:{os.getpid() % 65536}"
    system = ActorSystem(node=node_name, channel_layer=get_channel_layer())
    try:
        # A failure raises: the player is online elsewhere, so writing the database
        # instead would be overwritten by their actor.
        await system.start()
        return await system.ref_for(PID(node, name)).ask(msg, timeout=LIVE_ASK_TIMEOUT_S)
    finally:
        await system.shutdown()


def install() -> None:
    register_live_players(GatewayLivePlayers())

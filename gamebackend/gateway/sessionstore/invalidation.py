"""Cluster-wide L1 invalidation: Redis pub/sub on the channel layer's (single) Redis.

A node that takes a session over publishes ``<node> <session id>``; every other node drops
its L1 copy and any live copy of that session (the hub closes it with 4409), so no node
keeps serving a stale one. Pub/sub is lossy if a node is disconnected from Redis at that
moment: the L1 TTL (``GAME_SESSION_L1_TTL_S``) bounds how long a missed invalidation can
matter, and the hub's directory handoff covers the live copy anyway.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

logger = logging.getLogger(__name__)

CHANNEL = "game:session:invalidate"
# After the subscription drops (Redis restarted), resubscribe after this long.
RESUBSCRIBE_DELAY_S = 1.0


class RedisInvalidator:
    def __init__(self, client: Any, node_id: str, on_invalidate: Callable[[str], None]) -> None:
        self._client = client
        self._node_id = node_id
        self._on_invalidate = on_invalidate
        self._task: asyncio.Task[None] | None = None
        self.subscribed = asyncio.Event()

    async def publish(self, session_id: str) -> None:
        await self._client.publish(CHANNEL, f"{self._node_id} {session_id}")

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(  # owned by RedisInvalidator
                self._run(), name="session-invalidation"
            )

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    def handle(self, data: bytes | str) -> None:
        text = data.decode() if isinstance(data, bytes) else data
        node, _, session_id = text.partition(" ")
        if node != self._node_id and session_id:
            self._on_invalidate(session_id)

    async def _run(self) -> None:
        while True:
            pubsub = self._client.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(CHANNEL)
                self.subscribed.set()
                async for message in pubsub.listen():
                    if message.get("type") == "message":
                        self.handle(message["data"])
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.subscribed.clear()
                logger.warning("session invalidation: subscription lost (%r); retrying", exc)
                await asyncio.sleep(RESUBSCRIBE_DELAY_S)
            finally:
                await pubsub.aclose()

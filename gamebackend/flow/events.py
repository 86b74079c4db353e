"""Flow events: a rule change or a breaker command, announced to every process that enforces.

In the cluster profile events go over Redis pub/sub (``EVENTS_CHANNEL``); on a single
machine the console runs in the node's own process, so they are handed to the local
listeners (``listen_locally``). Either way a lost event is caught by the version poll of
``rulesync.RuleSync``.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from typing import Any

from django.conf import settings

__all__ = ["EVENTS_CHANNEL", "listen_locally", "publish", "stop_listening_locally"]

logger = logging.getLogger(__name__)

EVENTS_CHANNEL = "game:flow:events"

Listener = Callable[[dict[str, Any]], None]

# Listeners of this process (single machine); each must be safe to call from any thread.
_local: set[Listener] = set()
_lock = threading.Lock()
_publisher: Any = None


def listen_locally(listener: Listener) -> None:
    with _lock:
        _local.add(listener)


def stop_listening_locally(listener: Listener) -> None:
    with _lock:
        _local.discard(listener)


def _redis_publisher() -> Any:
    """One long-lived client per process (thread-safe: redis-py pools its connections)."""
    global _publisher
    with _lock:
        if _publisher is None:
            import redis

            _publisher = redis.Redis.from_url(settings.REDIS_URL)
        return _publisher


def publish(event: dict[str, Any]) -> None:
    """Announce ``event`` to every enforcing process (call it after the commit)."""
    if settings.REDIS_URL:
        import redis

        try:
            _redis_publisher().publish(EVENTS_CHANNEL, json.dumps(event))
        except redis.RedisError:
            logger.exception("publishing a flow event failed; the version poll will catch up")
        return
    with _lock:
        listeners = list(_local)
    for listener in listeners:
        listener(event)

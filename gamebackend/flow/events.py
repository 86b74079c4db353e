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

__all__ = [
    "EVENTS_CHANNEL", "dispatch", "handle_kind", "listen_locally", "publish",
    "stop_listening_locally", "unhandle_kind",
]  # fmt: skip

logger = logging.getLogger(__name__)

EVENTS_CHANNEL = "game:flow:events"

Listener = Callable[[dict[str, Any]], None]

# Listeners of this process (single machine); each must be safe to call from any thread.
_local: set[Listener] = set()
_lock = threading.Lock()
_publisher: Any = None
# Handlers of event kinds other than flow's own (``rules``, ``command``): the console's
# commands to the gateway (kick, notice, describe) ride the same channel. Called on the
# loop of the process's RuleSync.
_kinds: dict[str, Listener] = {}


def handle_kind(kind: str, handler: Listener) -> None:
    _kinds[kind] = handler


def unhandle_kind(kind: str, handler: Listener) -> None:
    if _kinds.get(kind) is handler:
        del _kinds[kind]


def dispatch(event: dict[str, Any]) -> None:
    """Hand an event of another kind to its handler (none registered: ignored)."""
    handler = _kinds.get(str(event.get("kind")))
    if handler is not None:
        try:
            handler(event)
        except Exception:
            logger.exception("handling a %s event failed", event.get("kind"))


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

"""The console's view of every node: each node's live state and an hour of its counters.

Each server process of each node writes here (``gateway/console_report.py``): its live
state (counters, sessions, rooms, actors, breakers) every ``LIVE_INTERVAL_S``, and one point
of its counters every ``POINT_INTERVAL_S``, kept ``HISTORY_S``. The console reads it.

Two stores with one interface: ``RedisSeries`` in the cluster profile (every node and the
console on any node see the same data; keys expire on their own when a node goes away), and
``MemorySeries`` on one machine, where the console is served by the node's own (single)
process. Answers to the console's on-demand questions (a session's detail) go here too.
Imports nothing of the project; the Redis client is passed in.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from typing import Any, Final, Protocol

LIVE_INTERVAL_S: Final = 2.0
POINT_INTERVAL_S: Final = 10.0
HISTORY_S: Final = 3600.0
POINTS_KEPT: Final = int(HISTORY_S / POINT_INTERVAL_S)
# A node that wrote nothing for this long is gone from the live views.
LIVE_TTL_S: Final = 10.0
# How long an on-demand answer (a session's detail) stays readable.
ANSWER_TTL_S: Final = 30.0

_PREFIX: Final = "game:console:"


class SeriesStore(Protocol):
    def put_live(self, node: str, state: dict[str, Any]) -> None: ...

    def put_point(self, node: str, point: dict[str, Any]) -> None: ...

    def live(self) -> dict[str, dict[str, Any]]: ...

    def history(self, since: float) -> dict[str, list[dict[str, Any]]]: ...

    def put_answer(self, key: str, answer: dict[str, Any]) -> None: ...

    def answer(self, key: str) -> dict[str, Any] | None: ...


class MemorySeries:
    """One process's store (single machine): plain dicts, replaced whole, under a lock."""

    def __init__(self, clock: Any = time.time) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._live: dict[str, tuple[float, dict[str, Any]]] = {}
        self._points: dict[str, deque[dict[str, Any]]] = {}
        self._answers: dict[str, tuple[float, dict[str, Any]]] = {}

    def put_live(self, node: str, state: dict[str, Any]) -> None:
        with self._lock:
            self._live[node] = (self._clock(), state)

    def put_point(self, node: str, point: dict[str, Any]) -> None:
        with self._lock:
            points = self._points.get(node)
            if points is None:
                points = self._points[node] = deque(maxlen=POINTS_KEPT)
            points.append(point)

    def live(self) -> dict[str, dict[str, Any]]:
        since = self._clock() - LIVE_TTL_S
        with self._lock:
            return {node: state for node, (at, state) in self._live.items() if at >= since}

    def history(self, since: float) -> dict[str, list[dict[str, Any]]]:
        with self._lock:
            return {
                node: [pt for pt in points if pt["t"] >= since]
                for node, points in self._points.items()
            }

    def put_answer(self, key: str, answer: dict[str, Any]) -> None:
        now = self._clock()
        with self._lock:
            self._answers = {k: v for k, v in self._answers.items() if v[0] >= now - ANSWER_TTL_S}
            self._answers[key] = (now, answer)

    def answer(self, key: str) -> dict[str, Any] | None:
        with self._lock:
            found = self._answers.get(key)
        if found is None or found[0] < self._clock() - ANSWER_TTL_S:
            return None
        return found[1]


class RedisSeries:
    """The cluster's store: a key per node's live state, a capped list per node's points."""

    def __init__(self, client: Any, clock: Any = time.time) -> None:
        self._redis = client  # a synchronous redis.Redis (callers run it off the event loop)
        self._clock = clock

    def put_live(self, node: str, state: dict[str, Any]) -> None:
        now = self._clock()
        pipe = self._redis.pipeline(transaction=False)
        pipe.set(f"{_PREFIX}live:{node}", json.dumps(state), ex=int(LIVE_TTL_S))
        pipe.zadd(f"{_PREFIX}nodes", {node: now})
        pipe.zremrangebyscore(f"{_PREFIX}nodes", "-inf", now - HISTORY_S)
        pipe.execute()

    def put_point(self, node: str, point: dict[str, Any]) -> None:
        key = f"{_PREFIX}points:{node}"
        pipe = self._redis.pipeline(transaction=False)
        pipe.rpush(key, json.dumps(point))
        pipe.ltrim(key, -POINTS_KEPT, -1)
        pipe.expire(key, int(HISTORY_S))
        pipe.execute()

    def _nodes(self, since: float) -> list[str]:
        return [n.decode() for n in self._redis.zrangebyscore(f"{_PREFIX}nodes", since, "+inf")]

    def live(self) -> dict[str, dict[str, Any]]:
        nodes = self._nodes(self._clock() - LIVE_TTL_S)
        if not nodes:
            return {}
        raw = self._redis.mget([f"{_PREFIX}live:{node}" for node in nodes])
        return {node: json.loads(value) for node, value in zip(nodes, raw, strict=True) if value}

    def history(self, since: float) -> dict[str, list[dict[str, Any]]]:
        out: dict[str, list[dict[str, Any]]] = {}
        for node in self._nodes(self._clock() - HISTORY_S):
            points = [json.loads(v) for v in self._redis.lrange(f"{_PREFIX}points:{node}", 0, -1)]
            out[node] = [pt for pt in points if pt["t"] >= since]
        return out

    def put_answer(self, key: str, answer: dict[str, Any]) -> None:
        self._redis.set(f"{_PREFIX}answer:{key}", json.dumps(answer), ex=int(ANSWER_TTL_S))

    def answer(self, key: str) -> dict[str, Any] | None:
        raw = self._redis.get(f"{_PREFIX}answer:{key}")
        return None if raw is None else dict(json.loads(raw))


_memory = MemorySeries()
_stores: dict[str, RedisSeries] = {}
_lock = threading.Lock()


def series_store(redis_url: str) -> SeriesStore:
    """The process's store: Redis when the node has one, else this process's memory."""
    if not redis_url:
        return _memory
    with _lock:
        store = _stores.get(redis_url)
        if store is None:
            import redis

            store = _stores[redis_url] = RedisSeries(redis.Redis.from_url(redis_url))
        return store

"""Copies this process's gateway state into the Prometheus metrics (``gamebackend.metrics``).

The hot path only bumps plain counters here (``count_in``/``count_out``: a dict update,
no lock, no shared-memory write per message); the sampler adds them to the Prometheus
counters and sets the gauges each time the runtime's console report runs (every
``series.LIVE_INTERVAL_S``, gateway/console_report.py), which then reads those metrics.
Request latencies go straight into their histogram (one observation per request).
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

from actors import ActorSystem
from gamebackend import metrics
from gamebackend.flow.enforcement import FlowEnforcement
from gamebackend.players.flush import FlushBuffer
from gamebackend.rooms import counters as room_counters

logger = logging.getLogger(__name__)

BREAKER_LEVELS = {"closed": 0, "half_open": 1, "open": 2}
_DECISIONS = ("allowed", "queued", "rejected")

# Messages by wire type since the last sample (the consumer counts; the sampler drains).
messages_in: Counter[str] = Counter()
messages_out: Counter[str] = Counter()


class MetricsSampler:
    def __init__(
        self,
        *,
        system: ActorSystem,
        enforcement: FlowEnforcement,
        flusher: FlushBuffer,
        connections: Callable[[], int],
        sessions: Callable[[], int],
        room_stats: Callable[[], Awaitable[list[dict[str, Any]]]] | None = None,
    ) -> None:
        self._system = system
        self._enforcement = enforcement
        self._flusher = flusher
        self._connections = connections
        self._sessions = sessions
        self._room_stats = room_stats
        # Last cumulative values seen, so counters grow by the difference.
        self._seen: dict[Any, int] = {}

    def _grow(self, key: Any, value: int, counter: Any) -> None:
        delta = value - self._seen.get(key, 0)
        self._seen[key] = value
        if delta > 0:
            counter.inc(delta)

    def sample(self) -> None:
        for counts, family in (
            (messages_in, metrics.MESSAGES_IN),
            (messages_out, metrics.MESSAGES_OUT),
        ):
            drained = dict(counts)
            counts.clear()
            for kind, n in drained.items():
                family.labels(kind).inc(n)
        metrics.CONNECTIONS.set(self._connections())
        metrics.SESSIONS.set(self._sessions())
        totals = self._system.totals()
        metrics.ACTORS.set(totals["actors"])
        self._grow("restarts", totals["restarts"], metrics.ACTOR_RESTARTS)
        self._grow("dead_letters", totals["dead_letters"], metrics.DEAD_LETTERS)
        depth, deepest = self._system.mailbox_depths()
        metrics.MAILBOX_DEPTH.set(depth)
        metrics.MAILBOX_DEPTH_MAX.set(deepest)
        metrics.FLUSH_BACKLOG.set(len(self._flusher))
        oldest = self._flusher.oldest_pending_at
        metrics.FLUSH_LAG.set(0.0 if oldest is None else time.monotonic() - oldest)
        for breaker in self._enforcement.breakers.snapshot():
            level = BREAKER_LEVELS.get(str(breaker["state"]), 0)
            metrics.BREAKER_STATE.labels(breaker["name"]).set(level)
        for gate in self._enforcement.limiter.counters():
            for decision in _DECISIONS:
                key = (gate["resource"], gate["scope"], decision)
                self._grow(key, int(gate[decision]), metrics.RATE_LIMIT_DECISIONS.labels(*key))

    @staticmethod
    def sample_room_counters() -> None:
        """Drain the node-wide room counters into their Prometheus families."""
        drained = dict(room_counters.totals)
        room_counters.totals.clear()
        for event, n in drained.items():
            metrics.ROOM_EVENTS.labels(event).inc(n)
        jitter = room_counters.jitter_s
        observe = metrics.ROOM_TICK_JITTER.observe
        while jitter:
            observe(max(0.0, jitter.popleft()))

    async def sample_rooms(self) -> list[dict[str, Any]]:
        """Rooms and their members: asks every local room (cheap, once per sample)."""
        self.sample_room_counters()
        if self._room_stats is None:
            return []
        stats = await self._room_stats()
        metrics.ROOMS.set(len(stats))
        metrics.ROOM_MEMBERS.set(sum(int(room["members"]) for room in stats))
        return stats

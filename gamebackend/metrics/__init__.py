"""Prometheus metrics of a node (``/metrics``), in prometheus_client's multi-process mode.

Every server process of a node (``runnode --processes``) writes its values to files in
``PROMETHEUS_MULTIPROC_DIR`` (``runnode`` sets it to ``GAME_VAR_DIR/metrics``, emptied at
start), and ``/metrics``, served by whichever process gets the request, adds them up.
Without that variable (a server started on its own, tests) the process's own registry is
used. The definitions are here; the hot path counts messages (``gateway/consumer.py``)
and a sampler in each process copies its runtime state into the gauges every few seconds
(``gateway/metrics_sampler.py``). Imports only prometheus_client.
"""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector

__all__ = [
    "ACTORS",
    "ACTOR_RESTARTS",
    "BREAKER_STATE",
    "CONNECTIONS",
    "CONTENT_TYPE",
    "DEAD_LETTERS",
    "FLUSH_BACKLOG",
    "FLUSH_LAG",
    "MAILBOX_DEPTH",
    "MAILBOX_DEPTH_MAX",
    "MESSAGES_IN",
    "MESSAGES_OUT",
    "RATE_LIMIT_DECISIONS",
    "REQUEST_SECONDS",
    "ROOMS",
    "ROOM_EVENTS",
    "ROOM_MEMBERS",
    "ROOM_TICK_JITTER",
    "SESSIONS",
    "exposition",
]

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = CONTENT_TYPE_LATEST
# Request latency buckets (seconds): a game's requests take milliseconds when healthy.
LATENCY_BUCKETS = (
    0.001,
    0.002,
    0.004,
    0.008,
    0.016,
    0.032,
    0.064,
    0.128,
    0.256,
    0.512,
    1.0,
    2.0,
    5.0,
)

# Gauges sampled from each process's state: summed (or maxed) over live processes.
CONNECTIONS = Gauge(
    "game_connections", "Open game WebSocket connections", multiprocess_mode="livesum"
)
SESSIONS = Gauge(
    "game_sessions", "Player sessions (connected or resumable)", multiprocess_mode="livesum"
)
ACTORS = Gauge("game_actors", "Live actors", multiprocess_mode="livesum")
MAILBOX_DEPTH = Gauge(
    "game_mailbox_depth", "Messages waiting in all actors' mailboxes", multiprocess_mode="livesum"
)
MAILBOX_DEPTH_MAX = Gauge(
    "game_mailbox_depth_max", "The deepest actor mailbox", multiprocess_mode="livemax"
)
FLUSH_BACKLOG = Gauge(
    "game_flush_backlog", "Player states waiting to be sent to Celery", multiprocess_mode="livesum"
)
FLUSH_LAG = Gauge(
    "game_flush_lag_seconds",
    "Age of the oldest player state waiting to be sent to Celery",
    multiprocess_mode="livemax",
)
BREAKER_STATE = Gauge(
    "game_breaker_state",
    "Circuit breaker state: 0 closed, 1 half-open, 2 open (the worst of the processes)",
    ["breaker"],
    multiprocess_mode="livemax",
)
# Counters (kept across process restarts, as Prometheus expects of counters).
MESSAGES_IN = Counter("game_messages_in", "Client messages received, by type", ["type"])
MESSAGES_OUT = Counter("game_messages_out", "Server messages sent, by type", ["type"])
RATE_LIMIT_DECISIONS = Counter(
    "game_rate_limit_decisions",
    "Rate-limit decisions by resource, rule scope and outcome",
    ["resource", "scope", "decision"],
)
ACTOR_RESTARTS = Counter("game_actor_restarts", "Actor restarts after a failure")
DEAD_LETTERS = Counter("game_dead_letters", "Messages to actors that were gone")
REQUEST_SECONDS = Histogram(
    "game_request_seconds",
    "Client request (a message with an id) to its reply being written, by request type",
    ["type"],
    buckets=LATENCY_BUCKETS,
)

# Rooms (lockstep battles) hosted by this node.
ROOMS = Gauge("game_rooms", "Rooms hosted", multiprocess_mode="livesum")
ROOM_MEMBERS = Gauge("game_room_members", "Members of hosted rooms", multiprocess_mode="livesum")
ROOM_EVENTS = Counter(
    "game_room_events",
    "Room events: ticks closed, inputs, late inputs (shifted or dropped), overruns, desyncs",
    ["event"],
)
# Tick jitter (actual minus scheduled close time): a healthy room closes within a
# millisecond or two of its deadline; the top buckets show a node that falls behind.
JITTER_BUCKETS = (0.0005, 0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.5)
ROOM_TICK_JITTER = Histogram(
    "game_room_tick_jitter_seconds",
    "Rooms' tick close time minus its deadline (the most recent ticks of each sample)",
    buckets=JITTER_BUCKETS,
)


def exposition() -> bytes:
    """The text exposition of every process of this node (or of this process alone)."""
    if os.environ.get(MULTIPROC_ENV):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
        return generate_latest(registry)
    return generate_latest(REGISTRY)

"""Readiness checks: each dependency answers within a bound or is reported as failed.

Checks act (a worker ping is a Celery task, the channel layer gets a message), so they
live here rather than in ``selectors`` (which only read).

Each check answers ``ok``, ``degraded: <why>`` (the node serves players, something it can
live without for a while is being repaired: a crashed worker the supervisor is restarting),
or any other text, which is a failure. The report's status is the worst of them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import connection

from gamebackend.celery import app as celery_app
from gamebackend.flow.admission import flow_ready
from gamebackend.health.selectors import worker_heartbeat_age_s
from gamebackend.health.supervision import RUNNING, WorkerState, read_worker_state
from gamebackend.health.tasks import PING_TASK_NAME
from gamebackend.players.flush import node_buffer

logger = logging.getLogger(__name__)

# Upper bound for any one dependency check; readiness must answer quickly even when a
# dependency hangs (a load balancer polls it every few seconds).
CHECK_TIMEOUT_S = 3.0
# How long /readyz waits for a worker to answer a fresh ping when the stored one is stale.
WORKER_PING_WAIT_S = 2.5
# Refresh the stored heartbeat in the background once it is this old, so a polled
# /readyz keeps finding a fresh answer without waiting.
WORKER_PING_REFRESH_S = 10.0
BROKER_CONNECT_TIMEOUT_S = 2
# The channel the layer check sends itself a ping on (plus a random suffix).
READYZ_CHANNEL_PREFIX = "readyz."
# A flush version unconfirmed for this long means the broker, worker or database is behind.
FLUSH_BEHIND_S = 1.0

OK = "ok"
DEGRADED = "degraded"
FAIL = "fail"
DEGRADED_PREFIX = f"{DEGRADED}: "


def check_status(result: str) -> str:
    """``ok``, ``degraded`` or ``fail`` for one check's answer."""
    if result == OK:
        return OK
    return DEGRADED if result.startswith(DEGRADED_PREFIX) else FAIL


def _check_database_sync() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return OK


async def check_database() -> str:
    return await database_sync_to_async(_check_database_sync)()


async def check_channel_layer() -> str:
    layer = get_channel_layer()
    if layer is None:
        return "not configured"
    # A plain channel, not a process-local one (``new_channel``'s "...!id"): channels-redis
    # lets one coroutine per process at a time pop process-local channels, and the event
    # fan-out's receive holds that turn for up to its blocking pop's 5 s, so a ping on a
    # process-local channel answered after this check's timeout on a healthy node.
    channel = f"{READYZ_CHANNEL_PREFIX}{uuid.uuid4().hex}"
    await layer.send(channel, {"type": "readyz.ping"})
    message = await layer.receive(channel)
    return OK if message.get("type") == "readyz.ping" else "unexpected reply"


def _check_broker_sync() -> str:
    with celery_app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=BROKER_CONNECT_TIMEOUT_S)
    return OK


async def check_broker() -> str:
    return await asyncio.to_thread(_check_broker_sync)


def _send_ping() -> Any:
    return celery_app.send_task(PING_TASK_NAME, kwargs={"node_id": settings.GAME_NODE_ID})


def supervised_worker() -> WorkerState | None:
    """The supervisor's view of the worker when ``runnode`` started this process."""
    path = settings.GAME_SUPERVISOR_STATE_FILE
    return read_worker_state(Path(path)) if path else None


async def _ping_worker(age: float | None) -> str:
    """Ask a worker now and wait briefly for a real round trip."""
    result = await asyncio.to_thread(_send_ping)
    try:
        await asyncio.to_thread(result.get, timeout=WORKER_PING_WAIT_S, propagate=True)
    except Exception as exc:  # a timeout or the task's failure: report, don't raise
        last = "never" if age is None else f"{timedelta(seconds=int(age))} ago"
        return (
            f"no answer within {WORKER_PING_WAIT_S:g}s (last answer: {last}; {type(exc).__name__})"
        )
    finally:
        # The answer is recorded in the database; the stored result is not needed.
        with contextlib.suppress(Exception):
            result.forget()
    return OK


def _worker_down(supervised: WorkerState, now: float, max_age: float, why: str) -> str:
    """Degraded while the supervisor repairs it, failing once the outage (crashes in a
    row) has lasted longer than readiness allows: a worker that cannot come back is not a
    blip."""
    down_s = now - (supervised.down_since or now)
    text = (
        f"{why} (worker {supervised.last_exit or 'exited'}; down {down_s:.0f}s; "
        f"{supervised.restarts} restarts so far)"
    )
    return f"{DEGRADED_PREFIX}{text}" if down_s <= max_age else text


async def check_worker() -> str:
    max_age = float(settings.GAME_WORKER_PING_MAX_AGE_S)
    supervised = await asyncio.to_thread(supervised_worker)
    now = time.time()
    if supervised is not None and supervised.state != RUNNING:
        wait_s = max(0.0, (supervised.next_start_at or now) - now)
        return _worker_down(supervised, now, max_age, f"restarting in {wait_s:.1f}s")
    age = await database_sync_to_async(worker_heartbeat_age_s)(node_id=settings.GAME_NODE_ID)
    # After a restart, a heartbeat older than the current worker came from the one that
    # died: only a fresh answer shows the new one works.
    if (
        supervised is not None
        and supervised.down_since is not None
        and supervised.started_at is not None
        and (age is None or now - age < supervised.started_at)
    ):
        answer = await _ping_worker(age)
        if answer == OK:
            return OK
        return _worker_down(supervised, now, max_age, "restarted, not answering yet")
    if age is not None and age <= max_age:
        if age >= WORKER_PING_REFRESH_S:
            await asyncio.to_thread(_send_ping)
        return OK
    # Stale or never answered: ask now and wait briefly for a real round trip.
    return await _ping_worker(age)


async def check_flow_rules() -> str:
    """The rate-limit and breaker rules are loaded and the last sync pass succeeded."""
    flow = await flow_ready()
    status = flow.sync.status
    if status.ok:
        return OK
    version = flow.enforcement.version
    return f"rule sync failing ({status.failures} passes; keeping v{version}): {status.error}"


async def check_flush() -> str:
    """The flush buffer keeps up: ``degraded`` with the backlog while the broker or the
    database is behind (a second of unconfirmed work), over the bound it refuses players."""
    buffer = node_buffer()
    if buffer is None:
        return OK
    backlog = len(buffer)
    oldest = buffer.oldest_pending_at
    behind_s = 0.0 if oldest is None else time.monotonic() - oldest
    if buffer.over_bound:
        return (
            f"{DEGRADED_PREFIX}flush backlog {backlog} entities is over GAME_FLUSH_BUFFER_MAX "
            f"({buffer.max_entities}); new players are refused (1013)"
        )
    if behind_s > FLUSH_BEHIND_S:
        return f"{DEGRADED_PREFIX}flush backlog {backlog} entities, oldest {behind_s:.1f}s"
    return OK


CHECKS: dict[str, Callable[[], Awaitable[str]]] = {
    "database": check_database,
    "channel_layer": check_channel_layer,
    "broker": check_broker,
    "worker": check_worker,
    "flow_rules": check_flow_rules,
    "flush": check_flush,
}


async def _run_check(name: str, check: Callable[[], Awaitable[str]]) -> str:
    started = time.monotonic()
    try:
        return await asyncio.wait_for(check(), timeout=CHECK_TIMEOUT_S)
    except TimeoutError:
        return f"timeout after {CHECK_TIMEOUT_S:g}s"
    except Exception as exc:
        logger.warning(
            "readiness check %s failed after %.2fs: %s",
            name,
            time.monotonic() - started,
            exc,
        )
        return f"{type(exc).__name__}: {exc}"[:300]


async def readiness_report() -> tuple[str, dict[str, str]]:
    """Run every check concurrently: the overall status (``ok`` when all say ok, ``fail``
    when any fails, else ``degraded``) and each check's answer."""
    names = list(CHECKS)
    results = await asyncio.gather(*(_run_check(name, CHECKS[name]) for name in names))
    checks = dict(zip(names, results, strict=True))
    statuses = {check_status(value) for value in checks.values()}
    status = FAIL if FAIL in statuses else DEGRADED if DEGRADED in statuses else OK
    return status, checks

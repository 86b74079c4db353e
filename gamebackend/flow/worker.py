"""Breakers inside Celery worker processes, kept current by the nodes' ``RuleSync``.

A worker process has no event loop of its own, so its rule synchronisation runs on a
private one in a daemon thread (started on the first ``worker_breaker`` call and living
as long as the worker process). Worker threads only read the breakers, which are
thread-safe.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import threading

from django.conf import settings

from gamebackend.flow.breaker import Breaker
from gamebackend.flow.enforcement import FlowEnforcement
from gamebackend.flow.rulesync import SYNC_POLL_S, RuleSync
from gamebackend.flow.selectors import WORKER_PREFIX

__all__ = ["worker_breaker"]

logger = logging.getLogger(__name__)

# How long the first task waits for the rules before running with default breakers.
FIRST_LOAD_WAIT_S = 2.0


class WorkerFlow:
    def __init__(self) -> None:
        node_id = f"{WORKER_PREFIX}{os.getpid()}@{socket.gethostname()}"
        self.enforcement = FlowEnforcement(node_id=node_id)
        self.loaded = threading.Event()
        self._thread = threading.Thread(target=self._run, name="flow-rule-sync", daemon=True)
        self._thread.start()
        self.loaded.wait(FIRST_LOAD_WAIT_S)

    def _run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        redis = None
        if settings.REDIS_URL:
            import redis.asyncio as aioredis

            redis = aioredis.from_url(settings.REDIS_URL)
        # Reports its breakers (db.flush) like a node, for the console.
        sync = RuleSync(self.enforcement, redis=redis, report_state=True)
        while not sync.started:
            try:
                await sync.start()
            except Exception:
                # Logged and kept in sync.status; breakers keep their defaults meanwhile.
                await asyncio.sleep(SYNC_POLL_S)
        self.loaded.set()
        await asyncio.Event().wait()  # the process's lifetime: the sync tasks do the work


_worker_flow: WorkerFlow | None = None
_lock = threading.Lock()


def worker_breaker(name: str) -> Breaker:
    """The named breaker of this worker process, under the current rules."""
    global _worker_flow
    flow = _worker_flow
    if flow is None:
        with _lock:
            if _worker_flow is None:
                _worker_flow = WorkerFlow()
            flow = _worker_flow
    return flow.enforcement.breakers.breaker(name)

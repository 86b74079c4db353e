"""Breakers inside Celery worker processes, kept current by the nodes' ``RuleSync``.

A worker process has no event loop of its own, so its rule synchronisation runs on a
private one in a daemon thread (started on the first ``worker_breaker`` call). The
worker's shutdown (Celery's ``worker_shutdown`` signal) stops it while the process can
still run it: left to the interpreter's exit, its next poll met an executor that no longer
takes work and logged a failed sync on every Ctrl-C. Worker threads only read the
breakers, which are thread-safe.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import threading
from typing import Any

from celery.signals import worker_shutdown
from django.conf import settings

from gamebackend.flow.breaker import Breaker
from gamebackend.flow.enforcement import FlowEnforcement
from gamebackend.flow.rulesync import SYNC_POLL_S, RuleSync
from gamebackend.flow.selectors import WORKER_PREFIX

__all__ = ["worker_breaker"]

logger = logging.getLogger(__name__)

# How long the first task waits for the rules before running with default breakers.
FIRST_LOAD_WAIT_S = 2.0
# How long the worker's shutdown waits for the rule sync to stop (a database call in
# flight finishes first; after this the daemon thread is left to the process's exit).
STOP_TIMEOUT_S = 5.0


class WorkerFlow:
    def __init__(self) -> None:
        node_id = f"{WORKER_PREFIX}{os.getpid()}@{socket.gethostname()}"
        self.enforcement = FlowEnforcement(node_id=node_id)
        self.loaded = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._ready = threading.Event()  # set once the thread's loop can be stopped
        self._thread = threading.Thread(target=self._run, name="flow-rule-sync", daemon=True)
        self._thread.start()
        self.loaded.wait(FIRST_LOAD_WAIT_S)

    def _run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        stopping = self._stopping = asyncio.Event()
        self._ready.set()
        redis = None
        if settings.REDIS_URL:
            import redis.asyncio as aioredis

            redis = aioredis.from_url(settings.REDIS_URL)
        # Reports its breakers (db.flush) like a node, for the console.
        sync = RuleSync(self.enforcement, redis=redis, report_state=True)
        try:
            while not sync.started and not stopping.is_set():
                try:
                    await sync.start()
                except Exception:
                    # Logged and kept in sync.status; breakers keep their defaults meanwhile.
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stopping.wait(), SYNC_POLL_S)
            self.loaded.set()
            await stopping.wait()  # until the worker shuts down: the sync tasks do the work
        finally:
            await sync.close()
            if redis is not None:
                await redis.aclose()
        logger.info("flow rule sync on %s stopped", self.enforcement.node_id)

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> None:
        """Stop the rule sync and wait (at most ``timeout``) for its thread to end."""
        if not self._ready.wait(timeout):
            return
        loop, stopping = self._loop, self._stopping
        if loop is None or stopping is None:
            return
        with contextlib.suppress(RuntimeError):  # its loop already closed
            loop.call_soon_threadsafe(stopping.set)
        self._thread.join(timeout)


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


@worker_shutdown.connect
def _stop_worker_flow(**_: Any) -> None:
    flow = _worker_flow
    if flow is not None:
        flow.stop()

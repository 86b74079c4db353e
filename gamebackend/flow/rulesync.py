"""Rule synchronisation: keeps a process's ``FlowEnforcement`` current with the database.

One implementation for nodes and Celery workers:

1. load the rules (version, rate limits, breakers) from the database at start;
2. hear rule changes and breaker commands as events (``events``): Redis pub/sub in the
   cluster profile, an in-process hand-off on a single machine;
3. poll the rules version every ``SYNC_POLL_S`` as a safety net for a lost event (on a
   node, the same pass reports the node's live state and counts live nodes).

A failing pass is kept in ``status`` (shown by ``/readyz`` and the console), not only logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import json
import logging
import time
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any

from channels.db import database_sync_to_async

from gamebackend.flow import events
from gamebackend.flow.enforcement import BREAKER_ACTIONS, FlowEnforcement
from gamebackend.flow.events import EVENTS_CHANNEL, listen_locally, stop_listening_locally
from gamebackend.flow.selectors import flow_rules_load, live_node_count, rules_version
from gamebackend.flow.services import node_flow_state_record

__all__ = ["SYNC_POLL_S", "RuleSync", "SyncStatus"]

logger = logging.getLogger(__name__)

# Safety-net period: report this node's live state, count live nodes, and reload when the
# rules version moved without an event reaching us.
SYNC_POLL_S = 2.0
# A node that has not reported for this long no longer counts toward cluster shares.
NODE_STALE_S = 10.0
SUBSCRIBE_RETRY_S = 1.0


@dataclass
class SyncStatus:
    """How the last synchronisation pass went (a failure stays until a pass succeeds)."""

    ok: bool = True
    error: str = ""
    failures: int = 0  # consecutive failed passes
    last_ok_at: float | None = None  # wall clock

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "error": self.error,
            "failures": self.failures,
            "last_ok_at": self.last_ok_at,
        }


class RuleSync:
    def __init__(
        self, enforcement: FlowEnforcement, *, redis: Any = None, report_state: bool = False
    ) -> None:
        self.enforcement = enforcement
        self._redis = redis  # a long-lived redis.asyncio client, or None (single machine)
        self._report_state = report_state
        self.status = SyncStatus()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.started = False

    # -- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        """Load the rules now (raises when that fails, so callers can retry), then keep
        them current in the background."""
        if self.started:
            return
        await self.sync_now()
        if self._report_state:
            # Count the live nodes now, not one poll later: until then a node would take the
            # whole of every cluster rule whenever it falls back to its local share.
            try:
                await self._report()
            except Exception as exc:  # the poll retries; the rules are what must load
                logger.warning("flow state report on %s failed: %r", self.enforcement.node_id, exc)
        self.started = True
        self._loop = asyncio.get_running_loop()
        self._spawn(self._poll(), "flow-rule-poll")
        if self._redis is not None:
            self._spawn(self._subscribe(), "flow-rule-events")
        else:
            listen_locally(self._deliver_threadsafe)

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        # A fresh context: when the first caller is an HTTP request, its context holds
        # asgiref's per-request executor, which quits when the request ends; a task that
        # inherited it could never run database work again.
        task = asyncio.get_running_loop().create_task(  # owned by RuleSync._tasks
            coro, name=name, context=contextvars.Context()
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        stop_listening_locally(self._deliver_threadsafe)
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self.started = False

    # -- synchronisation -----------------------------------------------------------------

    async def sync_now(self) -> None:
        """Load and apply the current rules; records the outcome in ``status``."""
        try:
            version, limits, breakers = await database_sync_to_async(flow_rules_load)()
            self.enforcement.apply_rules(version, limits, breakers)
        except Exception as exc:
            self._failed(exc)
            raise
        self._succeeded()

    def handle_event(self, event: dict[str, Any]) -> None:
        kind = event.get("kind")
        if kind == "rules":
            if int(event.get("version", 0)) != self.enforcement.version:
                self._spawn(self._sync_logged(), "flow-rule-reload")
        elif kind == "command":
            action = str(event.get("action"))
            if action in BREAKER_ACTIONS:
                self.enforcement.apply_command(str(event["resource"]), action)
        else:
            events.dispatch(event)

    async def _sync_logged(self) -> None:
        with contextlib.suppress(Exception):  # recorded in status and logged by _failed
            await self.sync_now()

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(SYNC_POLL_S)
            try:
                if self._report_state:
                    await self._report()
                if await database_sync_to_async(rules_version)() != self.enforcement.version:
                    await self.sync_now()
                else:
                    self._succeeded()
            except Exception as exc:
                self._failed(exc)

    async def _report(self) -> None:
        enforcement = self.enforcement
        snapshot = {**enforcement.snapshot(), "sync": self.status.as_dict()}
        # Transitions are timed on the monotonic clock; the console shows wall time.
        offset = time.time() - time.monotonic()
        for breaker in snapshot.get("breakers", []):
            last = breaker.get("last_transition") or {}
            if last.get("at") is not None:
                last["wall_at"] = last["at"] + offset
        await database_sync_to_async(node_flow_state_record)(
            node_id=enforcement.node_id, rules_version=enforcement.version, snapshot=snapshot
        )
        live = await database_sync_to_async(live_node_count)(within_s=NODE_STALE_S)
        enforcement.live_nodes = max(1, live)

    async def _subscribe(self) -> None:
        while True:
            pubsub = self._redis.pubsub()
            try:
                await pubsub.subscribe(EVENTS_CHANNEL)
                async for message in pubsub.listen():
                    if message.get("type") != "message":
                        continue
                    try:
                        self.handle_event(json.loads(message["data"]))
                    except (ValueError, KeyError, TypeError):
                        logger.warning("ignoring a malformed flow event")
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                logger.warning("flow event subscription lost (%r); retrying", exc)
                await asyncio.sleep(SUBSCRIBE_RETRY_S)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()

    def _deliver_threadsafe(self, event: dict[str, Any]) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self.handle_event, event)

    def _succeeded(self) -> None:
        status = self.status
        if not status.ok:
            logger.info("flow rule sync on %s recovered", self.enforcement.node_id)
        status.ok, status.error, status.failures = True, "", 0
        status.last_ok_at = time.time()

    def _failed(self, exc: BaseException) -> None:
        status = self.status
        status.ok = False
        status.error = f"{type(exc).__name__}: {exc}"[:300]
        status.failures += 1
        logger.error(
            "flow rule sync on %s failed (%d in a row; keeping v%d): %s",
            self.enforcement.node_id, status.failures, self.enforcement.version, status.error,
        )  # fmt: skip

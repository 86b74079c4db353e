"""Live flow control on a node: rules loaded before players, changes applied within 1 s.

Each serving process has one ``FlowRuntime`` on its event loop. A rule saved in the
console is announced with ``publish``: in the cluster profile over Redis pub/sub (every
node, including the one that saved it, reloads from the database); on a single machine
in process. A periodic version check catches any announcement that was lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from typing import Any

from channels.db import database_sync_to_async
from django.conf import settings

from gamebackend.flow.breaker import BreakerRegistry
from gamebackend.flow.bucket import ALLOWED, Decision, Limiter, Scope
from gamebackend.flow.cluster_bucket import ClusterBucket

logger = logging.getLogger(__name__)

EVENTS_CHANNEL = "game:flow:events"
# Housekeeping period: publish this node's live state, count live nodes, and reload when
# the rules version moved without an announcement reaching us.
HOUSEKEEPING_S = 2.0
# A node that has not reported for this long no longer counts toward cluster shares.
NODE_STALE_S = 10.0
SUBSCRIBE_RETRY_S = 1.0
LOCAL_SCOPES = (Scope.PLAYER, Scope.IP, Scope.NODE)
NODE_KEY = "node"
# A cluster-scope rule has one bucket shared by every node (the key names the bucket).
CLUSTER_KEY = "all"


class FlowRuntime:
    def __init__(self) -> None:
        self.node_id: str = settings.GAME_NODE_ID
        self.limiter = Limiter()
        self.breakers = BreakerRegistry()
        self.version = -1
        self.live_nodes = 1
        self._clock = time.monotonic
        self.cluster: ClusterBucket | None = None
        self._redis: Any = None
        if settings.REDIS_URL:
            import redis.asyncio as aioredis

            self._redis = aioredis.from_url(settings.REDIS_URL)
            self.cluster = ClusterBucket(self._redis, live_nodes=lambda: self.live_nodes)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._started = asyncio.Event()
        self._starting = False

    # -- lifecycle -----------------------------------------------------------------------

    async def ready(self) -> None:
        """Load the rules once (before the first player is accepted) and start the loops."""
        if self._started.is_set():
            return
        if self._starting:
            await self._started.wait()
            return
        self._starting = True
        try:
            self._loop = asyncio.get_running_loop()
            await self.reload()
            self._spawn(self._housekeeping())
            if self._redis is not None:
                self._spawn(self._subscribe())
        finally:
            self._starting = False
            self._started.set()

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)  # owned by FlowRuntime._tasks
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self.cluster is not None:
            await self.cluster.close()
        if self._redis is not None:
            await self._redis.aclose()

    # -- rules and commands --------------------------------------------------------------

    async def reload(self) -> None:
        from gamebackend.flow.selectors import flow_rules_load

        version, limits, breakers = await database_sync_to_async(flow_rules_load)()
        self.limiter.set_rules(limits)
        self.breakers.set_rules(breakers)
        if version != self.version:
            logger.info(
                "flow rules v%d applied on %s (%d limits, %d breakers)",
                version, self.node_id, len(limits), len(breakers),
            )  # fmt: skip
        self.version = version

    def handle_event(self, event: dict[str, Any]) -> None:
        kind = event.get("kind")
        if kind == "rules":
            if int(event.get("version", 0)) != self.version:
                self._spawn(self._reload_logged())
        elif kind == "command":
            breaker = self.breakers.breaker(str(event["resource"]))
            action = event.get("action")
            if action == "force_open":
                breaker.force_open()
            elif action == "force_closed":
                breaker.force_closed()
            elif action == "reset":
                breaker.reset()
            logger.warning("breaker %s: operator %s on %s", event["resource"], action, self.node_id)

    async def _reload_logged(self) -> None:
        try:
            await self.reload()
        except Exception:
            logger.exception("reloading flow rules failed; keeping v%d", self.version)

    # -- checks (the gateway's hot path) ---------------------------------------------------

    def check_local(self, resource: str, player: str, ip: str) -> Decision:
        """One token from each local rule of ``resource`` (player, ip and node scopes).

        Synchronous and allocation-free when every bucket has a token: this runs for every
        inbound message.
        """
        limiter = self.limiter
        now = self._clock()
        worst = ALLOWED
        if player:
            decision = limiter.check(resource, Scope.PLAYER, player, now)
            if decision is not ALLOWED:
                worst = worse(worst, decision)
        if ip:
            decision = limiter.check(resource, Scope.IP, ip, now)
            if decision is not ALLOWED:
                worst = worse(worst, decision)
        decision = limiter.check(resource, Scope.NODE, NODE_KEY, now)
        if decision is not ALLOWED:
            worst = worse(worst, decision)
        return worst

    def has_cluster_rule(self, resource: str) -> bool:
        rule = self.limiter.cluster_rule(resource) if self.cluster is not None else None
        return rule is not None and rule.enabled

    async def check_cluster(self, resource: str) -> Decision:
        rule = self.limiter.cluster_rule(resource)
        if self.cluster is None or rule is None or not rule.enabled:
            return ALLOWED
        return await self.cluster.acquire(CLUSTER_KEY, rule)

    async def check(self, resource: str, *, player: str = "", ip: str = "") -> Decision:
        """One token from every rule of ``resource`` (player, ip, node, cluster scopes)."""
        worst = self.check_local(resource, player, ip)
        if self.has_cluster_rule(resource):
            worst = worse(worst, await self.check_cluster(resource))
        return worst

    # -- background ----------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        return {
            "limits": self.limiter.counters(),
            "breakers": self.breakers.snapshot(),
            "cluster": None if self.cluster is None else self.cluster.snapshot(),
            "degraded": bool(self.cluster is not None and self.cluster.degraded),
        }

    async def _housekeeping(self) -> None:
        from gamebackend.flow.selectors import live_node_count, rules_version
        from gamebackend.flow.services import node_flow_state_record

        while True:
            try:
                await database_sync_to_async(node_flow_state_record)(
                    node_id=self.node_id, rules_version=self.version, snapshot=self.snapshot()
                )
                self.live_nodes = max(
                    1, await database_sync_to_async(live_node_count)(within_s=NODE_STALE_S)
                )
                if await database_sync_to_async(rules_version)() != self.version:
                    await self.reload()
            except Exception:
                logger.exception("flow housekeeping failed")
            await asyncio.sleep(HOUSEKEEPING_S)

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


def worse(a: Decision, b: Decision) -> Decision:
    if b.rejected:
        if a.rejected and a.retry_after_ms >= b.retry_after_ms:
            return a
        return b
    if a.rejected:
        return a
    return b if b.delay_s > a.delay_s else a


_flow: FlowRuntime | None = None


def get_flow() -> FlowRuntime:
    """This process's flow runtime (call ``await get_flow().ready()`` before relying on it)."""
    global _flow
    if _flow is None:
        _flow = FlowRuntime()
    return _flow


async def flow_reset() -> None:
    """Close and forget the runtime (tests running the app on several event loops)."""
    global _flow
    flow, _flow = _flow, None
    if flow is not None:
        await flow.close()


def publish(event: dict[str, Any]) -> None:
    """Announce a rule change or breaker command to every node (called after commit)."""
    if settings.REDIS_URL:
        import redis

        client = redis.Redis.from_url(settings.REDIS_URL)
        try:
            client.publish(EVENTS_CHANNEL, json.dumps(event))
            return
        except redis.RedisError:
            logger.exception(
                "publishing a flow event failed; nodes poll within %ss", HOUSEKEEPING_S
            )
        finally:
            client.close()
    flow = _flow
    if flow is not None and flow._loop is not None and not flow._loop.is_closed():
        # Called from a console request's thread: hand the event to the runtime's loop.
        flow._loop.call_soon_threadsafe(flow.handle_event, event)

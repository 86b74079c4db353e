"""The one admission call: may this request go on? (``admit``)

The WebSocket consumer (connects and every message) and the HTTP API call ``admit`` with
a resource name (``ws.move``, ``ws.connect``, ``http.auth.guest``...) and the caller's
keys. It takes one token from every rule of the resource: the local ones (player, ip,
node) and, when the resource has one, the cluster rule; the stricter decision wins.

This module also owns the process's ``NodeFlow``: its enforcement state and the rule
synchronisation that keeps it current, started before the first admission.
"""

from __future__ import annotations

import asyncio

from django.conf import settings

from gamebackend.flow.bucket import ALLOWED, Decision
from gamebackend.flow.enforcement import FlowEnforcement, worse
from gamebackend.flow.rulesync import RuleSync

__all__ = ["NodeFlow", "admit", "flow_ready", "flow_reset", "node_flow"]


class NodeFlow:
    """A serving process's flow control: enforcement plus its rule synchronisation."""

    def __init__(self) -> None:
        self._redis = None
        if settings.REDIS_URL:
            import redis.asyncio as aioredis

            # One long-lived client for cluster buckets and the event subscription.
            self._redis = aioredis.from_url(settings.REDIS_URL)
        self.enforcement = FlowEnforcement(node_id=settings.GAME_NODE_ID, redis=self._redis)
        self.sync = RuleSync(self.enforcement, redis=self._redis, report_state=True)
        self._start_lock: asyncio.Lock | None = None

    async def ready(self) -> None:
        """Load the rules once (before the first admission) and keep them current."""
        if self.sync.started:
            return
        if self._start_lock is None:
            self._start_lock = asyncio.Lock()
        async with self._start_lock:
            await self.sync.start()

    async def close(self) -> None:
        await self.sync.close()
        await self.enforcement.close()
        if self._redis is not None:
            await self._redis.aclose()


_flow: NodeFlow | None = None


def node_flow() -> NodeFlow:
    """This process's flow control (rules load on the first ``flow_ready``/``admit``)."""
    global _flow
    if _flow is None:
        _flow = NodeFlow()
    return _flow


async def flow_ready() -> NodeFlow:
    flow = node_flow()
    await flow.ready()
    return flow


async def flow_reset() -> None:
    """Close and forget the process's flow control (tests that run several event loops)."""
    global _flow
    flow, _flow = _flow, None
    if flow is not None:
        await flow.close()


async def admit(resource: str, *, player: str = "", ip: str = "") -> Decision:
    """One token from every rule of ``resource``; the stricter decision of all.

    A queued admission (``queue`` behaviour) has already waited when this returns; a
    rejected one carries ``retry_after_ms``. With ``GAME_RATE_LIMITS=0`` everything is
    admitted.
    """
    if not settings.GAME_RATE_LIMITS:
        return ALLOWED
    flow = _flow
    if flow is None or not flow.sync.started:
        flow = await flow_ready()
    enforcement = flow.enforcement
    decision = enforcement.check_local(resource, player, ip)
    if enforcement.has_cluster_rule(resource):
        decision = worse(decision, await enforcement.check_cluster(resource))
    if decision.delay_s and decision.allowed:
        # Queue behaviour: the caller goes on after its turn (its later requests wait too).
        await asyncio.sleep(decision.delay_s)
    return decision

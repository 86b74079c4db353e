"""A process's flow-control enforcement state: rate-limit buckets and breakers.

No database and no settings: ``FlowEnforcement`` is told its rules (``apply_rules``) and
operator commands (``apply_command``) by ``rulesync.RuleSync``, and answers checks. The
gateway's hot path calls ``check_local`` for every inbound message, so it allocates
nothing when every bucket has a token.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import Any

from gamebackend.flow.breaker import BreakerRegistry
from gamebackend.flow.breaker import BreakerRule as BreakerSpec
from gamebackend.flow.bucket import ALLOWED, Decision, Limiter, Rule, Scope
from gamebackend.flow.cluster_bucket import ClusterBucket

__all__ = ["BREAKER_ACTIONS", "CLUSTER_KEY", "NODE_KEY", "FlowEnforcement", "worse"]

logger = logging.getLogger(__name__)

NODE_KEY = "node"
# A cluster-scope rule has one bucket shared by every node (the key names the bucket).
CLUSTER_KEY = "all"
BREAKER_ACTIONS = ("force_open", "force_closed", "reset")


def worse(a: Decision, b: Decision) -> Decision:
    """The stricter of two decisions: a rejection beats a delay, a longer wait beats a shorter."""
    if b.rejected:
        if a.rejected and a.retry_after_ms >= b.retry_after_ms:
            return a
        return b
    if a.rejected:
        return a
    return b if b.delay_s > a.delay_s else a


class FlowEnforcement:
    def __init__(self, *, node_id: str, redis: Any = None) -> None:
        self.node_id = node_id
        self.limiter = Limiter()
        self.breakers = BreakerRegistry()
        self.version = -1  # rules version applied; -1 until the first load
        self.live_nodes = 1  # nodes sharing cluster-scope rules (for the fallback share)
        self._clock = time.monotonic
        self.cluster: ClusterBucket | None = None
        if redis is not None:
            self.cluster = ClusterBucket(redis, live_nodes=lambda: self.live_nodes)

    @property
    def loaded(self) -> bool:
        return self.version >= 0

    # -- rules and commands --------------------------------------------------------------

    def apply_rules(
        self, version: int, limits: Iterable[Rule], breakers: Iterable[BreakerSpec]
    ) -> None:
        limits, breakers = list(limits), list(breakers)
        self.limiter.set_rules(limits)
        self.breakers.set_rules(breakers)
        if version != self.version:
            logger.info(
                "flow rules v%d applied on %s (%d limits, %d breakers)",
                version, self.node_id, len(limits), len(breakers),
            )  # fmt: skip
        self.version = version

    def apply_command(self, resource: str, action: str) -> None:
        """An operator's breaker command: ``force_open``, ``force_closed`` or ``reset``."""
        breaker = self.breakers.breaker(resource)
        if action == "force_open":
            breaker.force_open()
        elif action == "force_closed":
            breaker.force_closed()
        elif action == "reset":
            breaker.reset()
        else:
            raise ValueError(f"unknown breaker action {action!r}")
        logger.warning("breaker %s: operator %s on %s", resource, action, self.node_id)

    # -- checks --------------------------------------------------------------------------

    def check_local(self, resource: str, player: str, ip: str) -> Decision:
        """One token from each local rule of ``resource`` (player, ip and node scopes)."""
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

    # -- reporting -----------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        return {
            "limits": self.limiter.counters(),
            "breakers": self.breakers.snapshot(),
            "cluster": None if self.cluster is None else self.cluster.snapshot(),
            "degraded": bool(self.cluster is not None and self.cluster.degraded),
        }

    async def close(self) -> None:
        if self.cluster is not None:
            await self.cluster.close()

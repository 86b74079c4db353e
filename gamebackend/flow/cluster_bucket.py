"""Cluster-scope token buckets shared by every node through Redis.

One atomic Lua script per check (EVALSHA, cached with ``register_script``). A check made
while nothing is on the wire goes straight out; checks that arrive while a round trip is
in flight are sent together in one pipeline (an automatic micro-batch, Nagle-style), and
``acquire_many`` does the same explicitly.

When Redis does not answer within ``timeout_s`` the bucket degrades to a local bucket
holding this node's share of the limit (rate / live nodes), logs once, and probes Redis at
most once per ``probe_interval_s`` until it answers again. The deadline counts only time
the event loop actually ran: a busy or CPU-starved process is not a Redis outage (see
``_deadline``). A local bucket continues from Redis's last answer instead of starting
full, so a flap hands out no fresh burst. See docs/FLOW.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import math
from collections import OrderedDict
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import NoScriptError, RedisError

from gamebackend.flow.bucket import ALLOWED, Behavior, Decision, Rule, TokenBucket, idle_ttl_s
from gamebackend.flow.clock import MONOTONIC, Clock

__all__ = [
    "DEFAULT_PREFIX",
    "FALLBACK_MAX_BUCKETS",
    "LOOP_STALL_S",
    "MAX_BATCH",
    "MIN_KEY_TTL_MS",
    "PROBE_INTERVAL_S",
    "REDIS_MAX_WAIT_S",
    "REDIS_TIMEOUT_S",
    "TOKEN_BUCKET_LUA",
    "ClusterBucket",
]

logger = logging.getLogger(__name__)

# Longest a check waits for Redis before answering from the local share instead, counted
# in time the event loop was free to read the answer (see LOOP_STALL_S).
REDIS_TIMEOUT_S = 0.5
# A deadline check that runs later than this after its due time means this process was not
# running (CPU starvation, a GC pause, a long batch of callbacks): Redis's answer may be
# sitting unread in the socket, so the stall does not count against Redis and the deadline
# moves on by a fresh REDIS_TIMEOUT_S.
LOOP_STALL_S = 0.01
# Hard bound on one check's wait, stalls included.
REDIS_MAX_WAIT_S = 2.0
# While degraded, at most one check per this interval goes to Redis to see if it is back.
PROBE_INTERVAL_S = 1.0
# Floor for the bucket keys' expiry: a key is only dropped once it has refilled anyway, but
# callers passing their own timestamps may run simulated time faster than Redis's clock.
MIN_KEY_TTL_MS = 60_000
# Local fallback buckets kept (LRU) while degraded.
FALLBACK_MAX_BUCKETS = 10_000
# Checks sent in one pipeline; a larger backlog goes out in several.
MAX_BATCH = 512
DEFAULT_PREFIX = "flow:bucket:"
# Cached per-rule script arguments / node shares; rules change rarely, but every live
# update makes new Rule objects, so the caches are dropped when they pass this size.
RULE_CACHE_MAX = 1024

# KEYS[1]: the bucket (hash: tokens, ts).
# ARGV[1]: "rate burst max_wait_s ttl_ms" (max_wait_s 0 = reject), one pre-encoded string
#          per rule: every argument costs redis-py an encode on each call.
# ARGV[2]: now in seconds, or "" to use Redis TIME.
# Returns {allowed (0/1), wait_us, tokens}: the queue delay when allowed, the retry hint when
# not (rounded to the microsecond, so float noise does not turn 100 ms into 101), and the
# tokens left (a string), which seed the local fallback if Redis goes away.
# Numbers are stored with %.17g so tokens and timestamps survive the round trip exactly.
TOKEN_BUCKET_LUA = """
local r, b, w, ttl = string.match(ARGV[1], '^(%S+) (%S+) (%S+) (%S+)$')
local rate = tonumber(r)
local burst = tonumber(b)
local max_wait = tonumber(w)
local now = tonumber(ARGV[2])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) + tonumber(t[2]) / 1000000
end
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1])
local ts = tonumber(state[2])
if not tokens or not ts then
  tokens = burst
  ts = now
end
if now > ts then
  tokens = tokens + (now - ts) * rate
  ts = now
end
if tokens > burst then
  tokens = burst
end
local allowed = 0
local wait = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
else
  wait = (1 - tokens) / rate
  if wait <= max_wait then
    tokens = tokens - 1
    allowed = 1
  else
    wait = wait - max_wait
  end
end
redis.call('HSET', KEYS[1], 'tokens', string.format('%.17g', tokens),
  'ts', string.format('%.17g', ts))
redis.call('PEXPIRE', KEYS[1], ttl)
return {allowed, math.floor(wait * 1000000 + 0.5), string.format('%.17g', tokens)}
"""

_Pending = tuple[str, Rule, "asyncio.Future[Decision]"]


def _decode(result: Any) -> Decision:
    allowed, wait_us = int(result[0]), int(result[1])
    if allowed:
        return ALLOWED if wait_us == 0 else Decision(True, wait_us / 1_000_000)
    return Decision(False, 0.0, max(1, math.ceil(wait_us / 1000)))


class _DeadlineCheck:
    """Expires ``cap`` once Redis had ``budget_s`` of loop time (see ``_deadline``)."""

    __slots__ = ("_budget_s", "_cap", "_due", "_give_up", "_handle", "_loop")

    def __init__(
        self, loop: asyncio.AbstractEventLoop, cap: asyncio.Timeout, budget_s: float, max_s: float
    ) -> None:
        now = loop.time()
        self._loop, self._cap, self._budget_s = loop, cap, budget_s
        self._due = now + budget_s
        self._give_up = now + max_s
        self._handle = loop.call_at(self._due, self._check)

    def _check(self) -> None:
        now = self._loop.time()
        if now - self._due > LOOP_STALL_S and now < self._give_up:
            # The loop was not running at the due time: what Redis sent meanwhile has not
            # been read yet. A fresh budget, not an outage.
            self._due = min(now + self._budget_s, self._give_up)
            self._handle = self._loop.call_at(self._due, self._check)
        elif not self._cap.expired():
            self._cap.reschedule(now)  # Redis had its time: expire at once

    def cancel(self) -> None:
        self._handle.cancel()


class ClusterBucket:
    """Token buckets enforced across all nodes. ``await acquire(key, rule)`` per check."""

    def __init__(
        self,
        redis: Redis,
        *,
        live_nodes: int | Callable[[], int] = 1,
        prefix: str = DEFAULT_PREFIX,
        clock: Clock = MONOTONIC,
        server_time: bool = True,
        timeout_s: float = REDIS_TIMEOUT_S,
        max_wait_s: float = REDIS_MAX_WAIT_S,
        probe_interval_s: float = PROBE_INTERVAL_S,
        batching: bool = True,
    ) -> None:
        """``server_time``: refill by Redis's TIME (one clock for all nodes, the production
        setting); False passes ``clock.now()`` instead, for deterministic simulations where
        every node shares one clock."""
        self._redis = redis
        self._script = redis.register_script(TOKEN_BUCKET_LUA)
        self._script_loaded = False
        self._live_nodes = live_nodes
        self._prefix = prefix
        self._clock = clock
        self._server_time = server_time
        self._timeout_s = timeout_s
        self._max_wait_s = max(timeout_s, max_wait_s)
        self._probe_interval_s = probe_interval_s
        self._batching = batching
        self._pending: list[_Pending] = []
        self._flusher: asyncio.Task[None] | None = None
        self._in_flight = 0  # direct (unbatched) checks awaiting Redis
        self._degraded = False
        self._degraded_since: float | None = None
        self._last_probe = -math.inf
        self._fallback: OrderedDict[tuple[str, str], TokenBucket] = OrderedDict()
        # (resource, key) -> (tokens left, clock time) of Redis's last answer for that bucket.
        self._last_seen: dict[tuple[str, str], tuple[float, float]] = {}
        self._shares: dict[tuple[Rule, int], Rule] = {}
        self._args: dict[Rule, bytes] = {}
        self.counters = {"redis_checks": 0, "batches": 0, "fallback_checks": 0}

    # -- public ----------------------------------------------------------------------------

    @property
    def degraded(self) -> bool:
        """True while checks are answered from the local share because Redis is away."""
        return self._degraded

    async def acquire(self, key: str, rule: Rule) -> Decision:
        """Take one token from the cluster-wide bucket of (rule.resource, key)."""
        if not rule.enabled:
            return ALLOWED
        if self._degraded and not self._probe_due():
            return self._local(key, rule)
        if not self._batching or (self._in_flight == 0 and self._flusher is None):
            # Nothing on the wire: go straight out (a lone check pays no batching hop).
            self._in_flight += 1
            try:
                return (await self._run([(key, rule)]))[0]
            finally:
                self._in_flight -= 1
        # A round trip is already out: queue behind it. The flusher starts on the next loop
        # iteration, so every check made meanwhile joins the same pipeline.
        future: asyncio.Future[Decision] = asyncio.get_running_loop().create_future()
        self._pending.append((key, rule, future))
        if self._flusher is None:
            loop = asyncio.get_running_loop()
            self._flusher = loop.create_task(self._flush())  # owned by ClusterBucket; close()
        return await future

    async def acquire_many(self, items: Sequence[tuple[str, Rule]]) -> list[Decision]:
        """Check several (key, rule) pairs in one pipeline; decisions in the same order."""
        decisions: list[Decision | None] = [None] * len(items)
        remote: list[tuple[str, Rule]] = []
        where: list[int] = []
        probing = self._degraded and self._probe_due()
        for i, (key, rule) in enumerate(items):
            if not rule.enabled:
                decisions[i] = ALLOWED
            elif self._degraded and not probing:
                decisions[i] = self._local(key, rule)
            else:
                remote.append((key, rule))
                where.append(i)
        for start in range(0, len(remote), MAX_BATCH):
            done = await self._run(remote[start : start + MAX_BATCH])
            for offset, decision in enumerate(done):
                decisions[where[start + offset]] = decision
        return [d if d is not None else ALLOWED for d in decisions]

    async def close(self) -> None:
        """Stop the flusher; checks still waiting are cancelled."""
        flusher, self._flusher = self._flusher, None
        if flusher is not None:
            flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await flusher
        pending, self._pending = self._pending, []
        for _, _, future in pending:
            future.cancel()

    def snapshot(self) -> dict[str, Any]:
        return {
            "degraded": self._degraded,
            "degraded_since": self._degraded_since,
            "live_nodes": self._nodes(),
            "fallback_buckets": len(self._fallback),
            "pending": len(self._pending),
            **self.counters,
        }

    # -- Redis path ------------------------------------------------------------------------

    async def _flush(self) -> None:
        try:
            while self._pending:
                batch = self._pending[:MAX_BATCH]
                del self._pending[:MAX_BATCH]
                try:
                    decisions = await self._run([(key, rule) for key, rule, _ in batch])
                except BaseException:
                    for _, _, future in batch:
                        future.cancel()
                    raise
                for (_, _, future), decision in zip(batch, decisions, strict=True):
                    if not future.done():  # its caller may have been cancelled meanwhile
                        future.set_result(decision)
        finally:
            self._flusher = None

    async def _run(self, items: list[tuple[str, Rule]]) -> list[Decision]:
        """Decide ``items`` in Redis, or locally if Redis does not answer in time."""
        try:
            results = await self._deadline(self._eval(items))
        except (RedisError, OSError, TimeoutError) as exc:
            self._set_degraded(exc)
            return [self._local(key, rule) for key, rule in items]
        self._set_healthy()
        self.counters["redis_checks"] += len(items)
        self.counters["batches"] += 1
        now = self._clock.now()
        seen = self._last_seen
        if len(seen) >= FALLBACK_MAX_BUCKETS:
            seen.clear()
        for (key, rule), result in zip(items, results, strict=True):
            seen[(rule.resource, key)] = (float(result[2]), now)
        return [_decode(result) for result in results]

    async def _deadline(self, awaitable: Coroutine[Any, Any, list[Any]]) -> list[Any]:
        """``await awaitable``, or TimeoutError once Redis had ``timeout_s`` to answer.

        A plain ``asyncio.timeout(timeout_s)`` measures this process as much as Redis: when
        the loop is stalled (CPU starvation, GC, a long batch of frames) the timer and the
        already-arrived reply become ready together, the timer runs first and a healthy
        Redis is declared unreachable. So the deadline is checked by a callback: if that
        callback itself ran late by more than LOOP_STALL_S, the loop was not running, and
        Redis gets a fresh ``timeout_s`` (up to ``max_wait_s`` in all).
        """
        # One timer: the check expires the (otherwise unbounded) timeout itself.
        async with asyncio.timeout(None) as cap:
            check = _DeadlineCheck(
                asyncio.get_running_loop(), cap, self._timeout_s, self._max_wait_s
            )
            try:
                return await awaitable
            finally:
                check.cancel()

    async def _eval(self, items: list[tuple[str, Rule]]) -> list[Any]:
        if len(items) == 1:
            key, rule = items[0]
            keys, args = [self._key(key, rule)], self._argv(rule)
            return [await self._script(keys=keys, args=args)]
        if not self._script_loaded:
            # Pipelines are sent with EVALSHA only; load once rather than letting redis-py
            # run SCRIPT EXISTS before every pipeline (an extra round trip each time).
            self._script.sha = await self._redis.script_load(TOKEN_BUCKET_LUA)
            self._script_loaded = True
        results = await self._pipeline(items)
        missing = [i for i, r in enumerate(results) if isinstance(r, NoScriptError)]
        if missing:  # Redis restarted or SCRIPT FLUSH: reload, redo only those checks
            self._script.sha = await self._redis.script_load(TOKEN_BUCKET_LUA)
            redone = await self._pipeline([items[i] for i in missing])
            for i, result in zip(missing, redone, strict=True):
                results[i] = result
        for result in results:
            if isinstance(result, Exception):
                raise result
        return results

    async def _pipeline(self, items: list[tuple[str, Rule]]) -> list[Any]:
        pipe = self._redis.pipeline(transaction=False)
        sha = self._script.sha
        for key, rule in items:
            pipe.evalsha(sha, 1, self._key(key, rule), *self._argv(rule))
        return list(await pipe.execute(raise_on_error=False))

    def _key(self, key: str, rule: Rule) -> str:
        return f"{self._prefix}{rule.resource}:{key}"

    def _argv(self, rule: Rule) -> list[bytes | str]:
        params = self._args.get(rule)
        if params is None:
            max_wait_s = rule.max_queueing_ms / 1000.0 if rule.behavior is Behavior.QUEUE else 0.0
            ttl_ms = max(MIN_KEY_TTL_MS, math.ceil(idle_ttl_s(rule) * 1000.0))
            params = f"{rule.rate!r} {rule.burst!r} {max_wait_s!r} {ttl_ms}".encode()
            if len(self._args) >= RULE_CACHE_MAX:
                self._args.clear()
            self._args[rule] = params
        return [params, "" if self._server_time else repr(self._clock.now())]

    # -- degraded mode ---------------------------------------------------------------------

    def _nodes(self) -> int:
        live = self._live_nodes
        count = live() if callable(live) else live
        return max(1, int(count))

    def _probe_due(self) -> bool:
        now = self._clock.now()
        if now - self._last_probe >= self._probe_interval_s:
            self._last_probe = now
            return True
        return False

    def _set_degraded(self, exc: BaseException) -> None:
        if self._degraded:
            return
        self._degraded = True
        self._degraded_since = self._last_probe = self._clock.now()
        logger.warning(
            "cluster rate limits degraded to this node's share (1/%d): Redis unreachable (%s)",
            self._nodes(),
            exc.__class__.__name__,
        )

    def _set_healthy(self) -> None:
        if not self._degraded:
            return
        self._degraded = False
        self._degraded_since = None
        self._fallback.clear()
        logger.info("cluster rate limits recovered: Redis answers again")

    def _share(self, rule: Rule) -> Rule:
        """This node's share of a cluster rule: rate and burst divided by live nodes."""
        nodes = self._nodes()
        share = self._shares.get((rule, nodes))
        if share is None:
            behavior = Behavior.QUEUE if rule.behavior is Behavior.QUEUE else Behavior.REJECT
            share = dataclasses.replace(
                rule,
                rate=rule.rate / nodes,
                burst=max(1.0, rule.burst / nodes),
                behavior=behavior,
                warm_up_s=0.0,
            )
            if len(self._shares) >= RULE_CACHE_MAX:
                self._shares.clear()
            self._shares[(rule, nodes)] = share
        return share

    def _local(self, key: str, rule: Rule) -> Decision:
        self.counters["fallback_checks"] += 1
        share = self._share(rule)
        now = self._clock.now()
        ident = (rule.resource, key)
        bucket = self._fallback.get(ident)
        if bucket is None:
            if len(self._fallback) >= FALLBACK_MAX_BUCKETS:
                self._fallback.popitem(last=False)
            # Continue from Redis's last answer (this node's share of what was left, plus
            # the share's refill since): a fresh full bucket at every flap would hand out
            # a new burst each time Redis blinks.
            tokens = None
            seen = self._last_seen.get(ident)
            if seen is not None:
                left, at = seen
                tokens = left / self._nodes() + share.rate * max(0.0, now - at)
            bucket = self._fallback[ident] = TokenBucket(share, now, tokens)
        else:
            self._fallback.move_to_end(ident)
            if bucket.rule is not share:
                bucket.apply(share)
        return bucket.try_acquire(now)

"""Local token-bucket rate limiting: rules, per-key buckets and the :class:`Limiter`.

Pure logic: no Django, no I/O, no locks. A :class:`Limiter` belongs to one event loop (the
gateway's) and is not thread-safe. Time is always passed in (``now``, monotonic seconds) or
read from an injected :class:`~gamebackend.flow.clock.Clock`, so tests use a ManualClock.

The exact behaviours (queueing bound, warm-up curve, eviction) are documented in
docs/FLOW.md; the comments here say why the code is shaped the way it is.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from gamebackend.flow.clock import MONOTONIC, Clock

__all__ = [
    "ALLOWED",
    "DEFAULT_MAX_BUCKETS_PER_RULE",
    "MAX_BURST",
    "MAX_QUEUEING_MS",
    "MAX_RATE",
    "MAX_WARM_UP_S",
    "MIN_RATE",
    "WARM_UP_COLD_FACTOR",
    "WARM_UP_MAX_TOKENS",
    "Behavior",
    "Decision",
    "Gate",
    "Limiter",
    "Rule",
    "RuleError",
    "Scope",
    "TokenBucket",
]

# Warm-up starts at rate / WARM_UP_COLD_FACTOR, as Guava's SmoothWarmingUp and Sentinel do.
WARM_UP_COLD_FACTOR = 3.0
# Most tokens a bucket holds during a warm-up ramp: no stored burst for a cold downstream,
# but more than one so the fraction refilled between two checks carries over (with a cap of
# exactly one, every admission under steady load would waste up to a check's worth).
WARM_UP_MAX_TOKENS = 2.0
# Buckets one rule may hold before the least recently used are dropped, whatever their state.
# 200k covers every connected player of a node with room to spare (about 150 B per bucket).
DEFAULT_MAX_BUCKETS_PER_RULE = 200_000
# Idle buckets dropped per new bucket created, so idle keys drain faster than new ones arrive
# while each check stays O(1).
EVICT_PER_INSERT = 2
# Slack added to a bucket's "indistinguishable from a fresh one" age before it is dropped.
IDLE_TTL_MARGIN_S = 1.0
# Smallest retry hint handed out, so a client never busy-loops on "retry in 0 ms".
MIN_RETRY_AFTER_MS = 1

# Bounds of a rule's numbers (docs/FLOW.md). A limit must stay a limit: 1e300 tokens/s
# passes everything while looking enforced, and a near-zero rate hands out retry hints of
# centuries. A million per second is far beyond what one key can send to a node; one token
# per 10 000 s (under three hours) still allows "one per hour"-style limits.
MIN_RATE = 0.0001
MAX_RATE = 1_000_000.0
MAX_BURST = 1_000_000.0
# A queued caller holds its request (and its player's later ones) this long at most: a
# minute is already far past any client's patience.
MAX_QUEUEING_MS = 60_000.0
# A cold downstream is warm within minutes; an hour-long ramp is a misconfiguration.
MAX_WARM_UP_S = 3_600.0


class RuleError(ValueError):
    """A rule field is missing, out of range or of an unknown kind."""


class Scope(StrEnum):
    PLAYER = "player"
    IP = "ip"
    NODE = "node"
    CLUSTER = "cluster"


class Behavior(StrEnum):
    REJECT = "reject"
    QUEUE = "queue"
    WARM_UP = "warm_up"


def show_number(value: float) -> str:
    """A bound as people write it: ``1,000,000`` rather than ``1e+06``, ``0.0001`` as is."""
    if value >= 1000 and value == int(value):
        return f"{int(value):,}"
    return f"{value:g}"


def _number(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise RuleError(f"{name} must be a number, got {value!r}")
    if not math.isfinite(value):
        raise RuleError(f"{name} must be a finite number, got {value!r}")
    return float(value)


def _in_range(name: str, value: object, low: float, high: float, *, open_low: bool) -> float:
    """``value`` in ``(low, high]`` (``open_low``) or ``[low, high]``, with a message that
    says the range, so the console and ``manage.py flowrule`` can show it as is."""
    number = _number(name, value)
    if (number <= low if open_low else number < low) or number > high:
        left = "(" if open_low else "["
        bounds = f"{left}{show_number(low)}, {show_number(high)}]"
        raise RuleError(f"{name} must be in {bounds}, got {value!r}")
    return number


def _positive(name: str, value: object, high: float) -> float:
    return _in_range(name, value, 0.0, high, open_low=True)


def _non_negative(name: str, value: object, high: float) -> float:
    return _in_range(name, value, 0.0, high, open_low=False)


def _enum(kind: type[StrEnum], name: str, value: Any) -> Any:
    try:
        return kind(value)
    except ValueError:
        known = ", ".join(m.value for m in kind)
        raise RuleError(f"unknown {name} {value!r} (known: {known})") from None


@dataclass(frozen=True, slots=True)
class Rule:
    """One rate-limiting rule: ``rate`` tokens/s into a bucket of ``burst`` tokens per key."""

    resource: str
    scope: Scope
    rate: float
    burst: float
    behavior: Behavior = Behavior.REJECT
    max_queueing_ms: float = 0.0
    warm_up_s: float = 0.0
    enabled: bool = True

    def __post_init__(self) -> None:
        # Rules arrive from the database and the console as plain strings and numbers;
        # normalise here so the hot path can compare enum members and floats.
        if not isinstance(self.resource, str) or not self.resource:
            raise RuleError(f"resource must be a non-empty string, got {self.resource!r}")
        set_ = object.__setattr__
        set_(self, "scope", _enum(Scope, "scope", self.scope))
        set_(self, "behavior", _enum(Behavior, "behavior", self.behavior))
        set_(self, "rate", _in_range("rate", self.rate, MIN_RATE, MAX_RATE, open_low=False))
        # At least 1: one check takes one token.
        set_(self, "burst", _in_range("burst", self.burst, 1.0, MAX_BURST, open_low=False))
        queueing = _non_negative("max_queueing_ms", self.max_queueing_ms, MAX_QUEUEING_MS)
        set_(self, "max_queueing_ms", queueing)
        set_(self, "warm_up_s", _non_negative("warm_up_s", self.warm_up_s, MAX_WARM_UP_S))
        if self.behavior is Behavior.QUEUE:
            _positive("max_queueing_ms", self.max_queueing_ms, MAX_QUEUEING_MS)
        if self.behavior is Behavior.WARM_UP:
            _positive("warm_up_s", self.warm_up_s, MAX_WARM_UP_S)
        if not isinstance(self.enabled, bool):
            raise RuleError(f"enabled must be a bool, got {self.enabled!r}")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Rule:
        """Build from a mapping (console form, JSON), rejecting unknown fields."""
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise RuleError(f"unknown rule fields: {', '.join(sorted(unknown))}")
        try:
            return cls(**data)
        except TypeError as exc:  # a required field is missing
            raise RuleError(str(exc)) from None

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


@dataclass(frozen=True, slots=True)
class Decision:
    """Outcome of one check.

    ``allowed`` with ``delay_s == 0``: go now. ``allowed`` with ``delay_s > 0`` (queue
    behaviour): the token is already reserved; wait ``delay_s`` then go. Not ``allowed``:
    rejected; ``retry_after_ms`` is when a retry could succeed.
    """

    allowed: bool
    delay_s: float = 0.0
    retry_after_ms: int = 0

    @property
    def queued(self) -> bool:
        return self.allowed and self.delay_s > 0.0

    @property
    def rejected(self) -> bool:
        return not self.allowed


# The one object returned for every immediate admission: the hot path allocates nothing.
ALLOWED = Decision(True)


def _retry_ms(seconds: float) -> int:
    return max(MIN_RETRY_AFTER_MS, math.ceil(seconds * 1000.0))


# Bucket modes; an int compared against 0 is the cheapest branch on the hot path.
_PLAIN = 0  # reject / queue
_WARM = 1  # warm_up behaviour
_OFF = 2  # rule disabled


class TokenBucket:
    """The token bucket of one key. ``try_acquire(now)`` takes one token.

    Tokens may go negative under the queue behaviour: a queued caller reserves its token at
    decision time, so the debt orders concurrent callers and each one's delay is the time
    until the bucket is back at zero.
    """

    __slots__ = (
        "_burst",
        "_last",
        "_last_take",
        "_max_wait_s",
        "_mode",
        "_rate",
        "_tokens",
        "_warm_end",
        "_warm_s",
        "_warm_start",
        "rule",
    )

    def __init__(self, rule: Rule, now: float, tokens: float | None = None) -> None:
        # A new key starts with a full bucket, unless told what is left (a cluster bucket's
        # local fallback continues from Redis's last answer).
        self._tokens = rule.burst if tokens is None else min(tokens, rule.burst)
        self._last = now
        # Never used: a warm-up bucket starts cold.
        self._last_take = -math.inf
        # No ramp in progress: _warm_start > _warm_end means "warmed / not warming".
        self._warm_start = math.inf
        self._warm_end = -math.inf
        self.apply(rule)

    def apply(self, rule: Rule) -> None:
        """Adopt ``rule``'s numbers, keeping the tokens (clamped to the new burst)."""
        self.rule = rule
        self._rate = rule.rate
        self._burst = rule.burst
        self._max_wait_s = rule.max_queueing_ms / 1000.0 if rule.behavior is Behavior.QUEUE else 0.0
        self._warm_s = rule.warm_up_s
        if not rule.enabled:
            self._mode = _OFF
        elif rule.behavior is Behavior.WARM_UP:
            self._mode = _WARM
        else:
            self._mode = _PLAIN
            self._warm_start, self._warm_end = math.inf, -math.inf
        if self._tokens > rule.burst:
            self._tokens = rule.burst

    @property
    def tokens(self) -> float:
        """Tokens at the last check (negative = reserved by queued callers)."""
        return self._tokens

    @property
    def last_seen(self) -> float:
        return self._last

    def try_acquire(self, now: float) -> Decision:
        if self._mode:
            return self._acquire_special(now)
        tokens = self._tokens
        elapsed = now - self._last
        if elapsed > 0.0:
            tokens += elapsed * self._rate
            self._last = now
        if tokens > self._burst:
            tokens = self._burst
        if tokens >= 1.0:
            self._tokens = tokens - 1.0
            return ALLOWED
        # Empty: how long until one whole token is there (for queued callers: past the debt).
        wait = (1.0 - tokens) / self._rate
        if wait <= self._max_wait_s:  # always False for reject (max 0, wait > 0)
            self._tokens = tokens - 1.0
            return Decision(True, wait)
        self._tokens = tokens
        return Decision(False, 0.0, _retry_ms(wait - self._max_wait_s))

    def _acquire_special(self, now: float) -> Decision:
        if self._mode == _OFF:
            return ALLOWED
        return self._acquire_warm(now)

    # -- warm-up ---------------------------------------------------------------------------

    def _warm_rate(self, t: float) -> float:
        """Allowed rate at ``t`` during a ramp: linear from rate/3 to rate over warm_up_s."""
        progress = (t - self._warm_start) / self._warm_s
        progress = min(max(progress, 0.0), 1.0)
        cold = 1.0 / WARM_UP_COLD_FACTOR
        return self._rate * (cold + (1.0 - cold) * progress)

    def _ramp_tokens(self, a: float, b: float) -> float:
        """Tokens the ramp refills between ``a`` and ``b`` (integral of the rate curve)."""
        end = self._warm_end
        added = 0.0
        ramp_b = min(b, end)
        if ramp_b > a:
            # Trapezoid: the rate is linear in time inside the ramp.
            added += (self._warm_rate(a) + self._warm_rate(ramp_b)) * 0.5 * (ramp_b - a)
        if b > end:
            added += (b - max(a, end)) * self._rate
        return added

    def _acquire_warm(self, now: float) -> Decision:
        tokens = self._tokens
        last = self._last
        warming = self._warm_start <= last < self._warm_end
        if now > last:
            if warming:
                tokens += self._ramp_tokens(last, now)
            else:
                tokens += (now - last) * self._rate
            self._last = now
        warming = self._warm_start <= now < self._warm_end
        if not warming:
            if tokens >= self._burst and now - self._last_take >= self._warm_s:
                # Idle spell (full and untouched for warm_up_s): start a ramp, with one
                # token for the caller that ends the spell. The stored burst is not handed
                # out to a cold downstream in one go (WARM_UP_MAX_TOKENS).
                self._warm_start = now
                self._warm_end = now + self._warm_s
                warming = True
                tokens = 1.0
            elif tokens > self._burst:
                tokens = self._burst
        if warming and tokens > WARM_UP_MAX_TOKENS:
            tokens = WARM_UP_MAX_TOKENS
        if tokens >= 1.0:
            self._tokens = tokens - 1.0
            self._last_take = now
            return ALLOWED
        self._tokens = tokens
        rate = self._warm_rate(now) if warming else self._rate
        return Decision(False, 0.0, _retry_ms((1.0 - tokens) / rate))

    def idle_ttl_s(self) -> float:
        return idle_ttl_s(self.rule)


def idle_ttl_s(rule: Rule) -> float:
    """Age after which an untouched bucket is indistinguishable from a fresh one.

    By then it has refilled from its deepest possible debt (burst + a full queue) and, for
    warm-up, sat idle long enough to be cold again, so dropping it loses no state.
    """
    max_wait_s = rule.max_queueing_ms / 1000.0 if rule.behavior is Behavior.QUEUE else 0.0
    refill_s = rule.burst / rule.rate + max_wait_s
    warm_s = rule.warm_up_s if rule.behavior is Behavior.WARM_UP else 0.0
    return max(refill_s, warm_s) + IDLE_TTL_MARGIN_S


class Gate:
    """The buckets and counters of one (resource, scope) rule; a stable handle.

    The gateway can keep a Gate for the life of the process: ``Limiter.set_rules`` updates
    it in place (and a removed rule turns it into a pass-through).
    """

    __slots__ = (
        "_buckets",
        "_idle_ttl_s",
        "_max_buckets",
        "allowed",
        "evicted",
        "queued",
        "rejected",
        "resource",
        "rule",
        "scope",
    )

    def __init__(self, resource: str, scope: Scope, max_buckets: int) -> None:
        self.resource = resource
        self.scope = scope
        self.rule: Rule | None = None
        self._buckets: OrderedDict[str, TokenBucket] = OrderedDict()
        self._max_buckets = max_buckets
        self._idle_ttl_s = 0.0
        self.allowed = 0
        self.queued = 0
        self.rejected = 0
        self.evicted = 0

    def set_rule(self, rule: Rule | None) -> None:
        self.rule = rule
        if rule is None:
            self._buckets.clear()
            return
        self._idle_ttl_s = idle_ttl_s(rule)
        # Buckets adopt the new numbers lazily on their next check (see check()).

    def check(self, key: str, now: float) -> Decision:
        """Take one token from ``key``'s bucket."""
        rule = self.rule
        if rule is None or not rule.enabled:
            return ALLOWED
        buckets = self._buckets
        bucket = buckets.get(key)
        if bucket is None:
            bucket = self._insert(key, rule, now)
        else:
            # LRU order: the front of the dict is always the least recently checked key.
            buckets.move_to_end(key)
            if bucket.rule is not rule:
                bucket.apply(rule)
        decision = bucket.try_acquire(now)
        if decision is ALLOWED:
            self.allowed += 1
        elif decision.allowed:
            self.queued += 1
        else:
            self.rejected += 1
        return decision

    def _insert(self, key: str, rule: Rule, now: float) -> TokenBucket:
        buckets = self._buckets
        # Drop a few idle buckets from the LRU end: O(1) per insert, and idle keys drain at
        # least as fast as new ones arrive, so 100k come-and-go players cannot pile up.
        for _ in range(EVICT_PER_INSERT):
            if not buckets:
                break
            oldest_key = next(iter(buckets))
            if now - buckets[oldest_key].last_seen < self._idle_ttl_s:
                break
            del buckets[oldest_key]
            self.evicted += 1
        while len(buckets) >= self._max_buckets:
            buckets.popitem(last=False)  # hard cap: lossy, but memory stays bounded
            self.evicted += 1
        bucket = TokenBucket(rule, now)
        buckets[key] = bucket
        return bucket

    def sweep(self, now: float) -> int:
        """Drop every idle bucket (LRU order makes this stop at the first live one)."""
        buckets = self._buckets
        dropped = 0
        while buckets:
            oldest_key = next(iter(buckets))
            if now - buckets[oldest_key].last_seen < self._idle_ttl_s:
                break
            del buckets[oldest_key]
            dropped += 1
        self.evicted += dropped
        return dropped

    def bucket(self, key: str) -> TokenBucket | None:
        """The key's bucket, if it has one (for the console; does not touch LRU order)."""
        return self._buckets.get(key)

    def __len__(self) -> int:
        return len(self._buckets)

    def counters(self) -> dict[str, Any]:
        return {
            "resource": self.resource,
            "scope": self.scope.value,
            "enabled": self.rule is not None and self.rule.enabled,
            "allowed": self.allowed,
            "queued": self.queued,
            "rejected": self.rejected,
            "buckets": len(self._buckets),
            "evicted": self.evicted,
        }


class Limiter:
    """Local rate limiting for the player, ip and node scopes.

    Cluster-scope rules are accepted by :meth:`set_rules` (so one rule list feeds both) but
    enforced by :class:`~gamebackend.flow.cluster_bucket.ClusterBucket`; look them up with
    :meth:`cluster_rule`. Not thread-safe: use it from the event loop that owns it.
    """

    def __init__(
        self,
        rules: Iterable[Rule] = (),
        *,
        clock: Clock = MONOTONIC,
        max_buckets_per_rule: int = DEFAULT_MAX_BUCKETS_PER_RULE,
    ) -> None:
        if max_buckets_per_rule < 1:
            raise ValueError("max_buckets_per_rule must be >= 1")
        self._clock = clock
        self._max_buckets = max_buckets_per_rule
        # scope -> resource -> Gate; nested so a check allocates no (resource, scope) tuple.
        # Keyed by str: a Scope is a str, and callers may pass the plain string.
        self._gates: dict[str, dict[str, Gate]] = {s: {} for s in Scope if s is not Scope.CLUSTER}
        self._cluster_rules: dict[str, Rule] = {}
        self.set_rules(rules)

    def set_rules(self, rules: Iterable[Rule]) -> None:
        """Replace the rule set. Buckets of a (resource, scope) that keeps a rule keep their
        tokens (clamped to the new burst on their next check); removed rules drop theirs."""
        local: dict[tuple[str, str], Rule] = {}
        cluster: dict[str, Rule] = {}
        for rule in rules:
            if not isinstance(rule, Rule):
                raise RuleError(f"not a Rule: {rule!r}")
            if rule.scope is Scope.CLUSTER:
                if rule.resource in cluster:
                    raise RuleError(f"two cluster rules for {rule.resource}")
                cluster[rule.resource] = rule
                continue
            ident = (rule.scope, rule.resource)
            if ident in local:
                raise RuleError(f"two {rule.scope} rules for {rule.resource}")
            local[ident] = rule
        for scope, gates in self._gates.items():
            for resource, gate in gates.items():
                gate.set_rule(local.pop((scope, resource), None))
        for (scope, resource), rule in local.items():
            self.gate(resource, scope).set_rule(rule)
        self._cluster_rules = cluster

    def gate(self, resource: str, scope: Scope | str) -> Gate:
        """The stable handle for (resource, scope); created as a pass-through if unknown."""
        scope = Scope(scope)
        if scope is Scope.CLUSTER:
            raise ValueError("cluster-scope rules are enforced by ClusterBucket, not Limiter")
        gates = self._gates[scope]
        gate = gates.get(resource)
        if gate is None:
            gate = gates[resource] = Gate(resource, scope, self._max_buckets)
        return gate

    def check(
        self, resource: str, scope: Scope | str, key: str, now: float | None = None
    ) -> Decision:
        """Take one token for ``key`` under the (resource, scope) rule; no rule = allowed."""
        gates = self._gates.get(scope)
        gate = gates.get(resource) if gates is not None else None
        if gate is None:
            return ALLOWED
        return gate.check(key, self._clock.now() if now is None else now)

    def cluster_rule(self, resource: str) -> Rule | None:
        return self._cluster_rules.get(resource)

    def rules(self) -> list[Rule]:
        found = [g.rule for gates in self._gates.values() for g in gates.values() if g.rule]
        return found + list(self._cluster_rules.values())

    def counters(self) -> list[dict[str, Any]]:
        """Per-rule counters for the console (allowed, queued, rejected, live buckets)."""
        return [g.counters() for gates in self._gates.values() for g in gates.values()]

    def sweep(self, now: float | None = None) -> int:
        """Drop all idle buckets now (optional housekeeping; checks already evict)."""
        t = self._clock.now() if now is None else now
        return sum(g.sweep(t) for gates in self._gates.values() for g in gates.values())

"""Circuit breakers: closed -> open -> half-open -> closed, over a sliding window of calls.

Pure logic: no Django, no I/O. State changes take a ``threading.Lock`` because
:meth:`Breaker.call_sync` may run in worker threads alongside the event loop; the
closed-state entry check reads one attribute and takes no lock.

Exact semantics (window, strategies, probes, open-time doubling, defaults) are in
docs/FLOW.md.
"""

from __future__ import annotations

import functools
import logging
import math
import threading
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from contextvars import ContextVar
from enum import StrEnum
from types import TracebackType
from typing import Any, ParamSpec, TypeVar

from gamebackend.flow.breaker_rules import (
    DEFAULT_HALF_OPEN_SUCCESSES,
    DEFAULT_PROBE_RATIO,
    BreakerRule,
    Strategy,
    default_rule,
)
from gamebackend.flow.bucket import RuleError
from gamebackend.flow.clock import MONOTONIC, Clock

__all__ = [
    "DEFAULT_HALF_OPEN_SUCCESSES",
    "DEFAULT_PROBE_RATIO",
    "MAX_OPEN_S",
    "OPEN_BACKOFF_MAX_FACTOR",
    "WINDOW_BUCKETS",
    "Breaker",
    "BreakerRegistry",
    "BreakerRule",
    "CircuitOpen",
    "State",
    "Strategy",
    "default_rule",
]

logger = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")

# Buckets in the sliding-window ring: stats cost O(1) and the window forgets in 1/10 steps.
WINDOW_BUCKETS = 10
# A failed half-open probe doubles the open time, up to this many times the rule's open_s...
OPEN_BACKOFF_MAX_FACTOR = 16
# ...and never past this (unless open_s itself is longer).
MAX_OPEN_S = 300.0
# Retry hint for calls turned away in half-open (not chosen as a probe): the state may
# change with any probe, so the hint is short.
HALF_OPEN_RETRY_AFTER_MS = 200
# Retry hint while an operator holds the breaker open: there is no end time to count down.
FORCED_OPEN_RETRY_AFTER_MS = 5_000
# The permissive default for names without a rule (see default_rule()).


class State(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


# Probe credit that buys a probe; a hair under 1 so that adding a ratio like 0.05 twenty
# times (0.9999999999999999 in floating point) still buys one every twentieth call.
_FULL_CREDIT = 1.0 - 1e-9

_CLOSED = State.CLOSED
_OPEN = State.OPEN
_HALF_OPEN = State.HALF_OPEN


class CircuitOpen(Exception):
    """Raised on entry when the breaker is open (or half-open and the call is no probe)."""

    def __init__(self, name: str, retry_after_ms: int, state: State) -> None:
        super().__init__(f"circuit {name} is {state.value}; retry in {retry_after_ms} ms")
        self.name = name
        self.retry_after_ms = retry_after_ms
        self.state = state


# One active ``with breaker:`` block of the current task/thread: (breaker, start, ticket,
# enclosing entry), a linked stack. A tuple, because it is built on every entry and a
# tuple costs a fraction of a class instance.
_Entry = tuple[Any, float, int, Any]

# Context managers need per-call state (start time, probe ticket) but one Breaker serves
# many tasks at once; a ContextVar is per task and per thread, so it keeps them apart.
_ACTIVE: ContextVar[_Entry | None] = ContextVar("flow_breaker_active", default=None)


def _retry_ms(seconds: float) -> int:
    return max(1, math.ceil(seconds * 1000.0))


class Breaker:
    """One circuit breaker. Use via ``async with``, ``call()``, ``call_sync()`` or ``with``."""

    __slots__ = (
        "_cap_open_s",
        "_cur_idx",
        "_cur_slot",
        "_epoch",
        "_errors",
        "_forced",
        "_ho_probes",
        "_ho_successes",
        "_inv_bucket_s",
        "_last",
        "_lock",
        "_max_rt_s",
        "_n_closed",
        "_n_failures",
        "_n_half_opened",
        "_n_opened",
        "_n_rejected",
        "_n_slow",
        "_n_successes",
        "_now",
        "_open_s",
        "_open_until",
        "_probe_credit",
        "_slows",
        "_state",
        "_sum_errors",
        "_sum_slow",
        "_sum_total",
        "_totals",
        "_trips",
        "name",
        "rule",
    )

    def __init__(self, name: str, rule: BreakerRule, clock: Clock = MONOTONIC) -> None:
        self.name = name
        self._now = clock.now
        self._lock = threading.Lock()
        self._state = _CLOSED
        self._forced: State | None = None
        # Bumped on every transition; a probe's ticket is the epoch it was admitted in, so
        # outcomes of probes from an earlier half-open spell are ignored.
        self._epoch = 1
        self._open_until = 0.0
        self._probe_credit = 0.0
        self._ho_probes = 0
        self._ho_successes = 0
        self._last: dict[str, Any] = {"at": None, "from": None, "to": None, "reason": None}
        # Plain int attributes, not a dict: they are bumped on every call.
        self._n_successes = self._n_failures = self._n_slow = self._n_rejected = 0
        self._n_opened = self._n_half_opened = self._n_closed = 0
        self._totals = [0] * WINDOW_BUCKETS
        self._errors = [0] * WINDOW_BUCKETS
        self._slows = [0] * WINDOW_BUCKETS
        self._sum_total = self._sum_errors = self._sum_slow = 0
        self._cur_idx = self._cur_slot = 0
        self._inv_bucket_s = 0.0
        self.rule = rule
        self.apply_rule(rule)

    # -- rules -----------------------------------------------------------------------------

    def apply_rule(self, rule: BreakerRule) -> None:
        """Adopt ``rule`` keeping the state (an open breaker stays open until its end)."""
        with self._lock:
            old = self.rule
            self.rule = rule
            inv = WINDOW_BUCKETS / rule.stat_window_s
            if inv != self._inv_bucket_s:
                # New bucket width: old counts cannot be re-binned, so the window restarts.
                self._inv_bucket_s = inv
                self._clear_window()
                self._cur_idx = int(self._now() * inv)
                self._cur_slot = self._cur_idx % WINDOW_BUCKETS
            self._max_rt_s = rule.max_rt_ms / 1000.0 if rule.max_rt_ms else math.inf
            self._cap_open_s = max(
                rule.open_s, min(rule.open_s * OPEN_BACKOFF_MAX_FACTOR, MAX_OPEN_S)
            )
            if self._state is _CLOSED or old is rule:
                self._open_s = rule.open_s
            else:
                self._open_s = min(self._open_s, self._cap_open_s)
            self._trips = rule.enabled and self._forced is not _CLOSED
            if not rule.enabled and self._state is not _CLOSED and self._forced is None:
                self._transition(_CLOSED, self._now(), "rule disabled")

    # -- entry and exit --------------------------------------------------------------------

    def _admit(self, now: float) -> int:
        """Admit a call: 0 for a normal call, the epoch for a half-open probe; or raise."""
        with self._lock:
            state = self._state
            if state is _CLOSED:
                return 0
            if state is _OPEN:
                if now < self._open_until:
                    self._n_rejected += 1
                    wait = self._open_until - now
                    ms = FORCED_OPEN_RETRY_AFTER_MS if wait == math.inf else _retry_ms(wait)
                    raise CircuitOpen(self.name, ms, _OPEN)
                self._transition(_HALF_OPEN, now, f"open for {self._open_s:g} s")
            # Half-open: every 1/ratio-th call is a probe (credit counter, deterministic).
            # The credit starts full, so the first call after the open spell probes.
            credit = self._probe_credit
            self._probe_credit = credit + self.rule.half_open_probe_ratio
            if credit >= _FULL_CREDIT:
                self._probe_credit -= 1.0
                self._ho_probes += 1
                return self._epoch
            self._n_rejected += 1
            raise CircuitOpen(self.name, HALF_OPEN_RETRY_AFTER_MS, _HALF_OPEN)

    def _record(self, start: float, end: float, failed: bool, ticket: int) -> None:
        slow = end - start > self._max_rt_s
        if ticket or self._state is not _CLOSED:
            with self._lock:
                self._count(failed, slow)
                self._record_other(end, failed, slow, ticket)
            return
        # Closed: no lock. On the event loop nothing can interleave; with call_sync from
        # several threads a count may rarely be lost, and _advance recomputes the sums from
        # the ring so no drift outlives one bucket. Transitions take the lock.
        if failed:
            self._n_failures += 1
        else:
            self._n_successes += 1
        idx = int(end * self._inv_bucket_s)
        if idx > self._cur_idx:
            self._advance(idx)
        slot = self._cur_slot
        self._totals[slot] += 1
        self._sum_total += 1
        if failed or slow:
            if failed:
                self._errors[slot] += 1
                self._sum_errors += 1
            if slow:
                self._n_slow += 1
                self._slows[slot] += 1
                self._sum_slow += 1
            if self._trips:
                with self._lock:
                    if self._state is _CLOSED:
                        self._evaluate(end)

    def _count(self, failed: bool, slow: bool) -> None:
        if failed:
            self._n_failures += 1
        else:
            self._n_successes += 1
        if slow:
            self._n_slow += 1

    def _record_other(self, end: float, failed: bool, slow: bool, ticket: int) -> None:
        """Outcome of a half-open probe, or of a call admitted before the breaker opened
        (ignored: the window restarts when the breaker closes)."""
        if ticket and ticket == self._epoch and self._state is _HALF_OPEN:
            bad = failed or (slow and self.rule.strategy is Strategy.SLOW_RATIO)
            self._probe_outcome(end, bad, slow)

    def _evaluate(self, now: float) -> None:
        rule = self.rule
        total = self._sum_total
        if total < rule.min_requests:
            return
        strategy = rule.strategy
        if strategy is Strategy.ERROR_RATIO:
            value, trips = self._sum_errors / total, self._sum_errors / total >= rule.threshold
        elif strategy is Strategy.ERROR_COUNT:
            value, trips = float(self._sum_errors), self._sum_errors >= rule.threshold
        else:
            value, trips = self._sum_slow / total, self._sum_slow / total >= rule.threshold
        if trips:
            self._open_s = rule.open_s
            reason = f"{strategy.value} {value:.3g} >= {rule.threshold:g} over {total} calls"
            self._transition(_OPEN, now, reason)

    def _probe_outcome(self, now: float, bad: bool, slow: bool) -> None:
        if bad:
            self._open_s = min(self._open_s * 2.0, self._cap_open_s)
            self._transition(_OPEN, now, "probe slow" if slow else "probe failed")
            return
        self._ho_successes += 1
        if self._ho_successes >= self.rule.half_open_successes:
            self._transition(_CLOSED, now, f"{self._ho_successes} probes succeeded")

    # -- window ----------------------------------------------------------------------------

    def _advance(self, idx: int) -> None:
        """Move the ring to bucket ``idx``, forgetting the buckets it passes over."""
        cur = self._cur_idx
        for step in range(1, min(idx - cur, WINDOW_BUCKETS) + 1):
            slot = (cur + step) % WINDOW_BUCKETS
            self._totals[slot] = self._errors[slot] = self._slows[slot] = 0
        # Recount rather than trust the running sums (see _record: threads may race).
        self._sum_total = sum(self._totals)
        self._sum_errors = sum(self._errors)
        self._sum_slow = sum(self._slows)
        self._cur_idx = idx
        self._cur_slot = idx % WINDOW_BUCKETS

    def _clear_window(self) -> None:
        for ring in (self._totals, self._errors, self._slows):
            ring[:] = [0] * WINDOW_BUCKETS
        self._sum_total = self._sum_errors = self._sum_slow = 0

    # -- transitions -----------------------------------------------------------------------

    def _transition(self, to: State, now: float, reason: str) -> None:
        frm = self._state
        self._state = to
        self._epoch += 1
        self._last = {"at": now, "from": frm.value, "to": to.value, "reason": reason}
        if to is _OPEN:
            self._n_opened += 1
            forced = self._forced is _OPEN
            self._open_until = math.inf if forced else now + self._open_s
            logger.warning("circuit %s %s -> open: %s", self.name, frm.value, reason)
        elif to is _HALF_OPEN:
            self._n_half_opened += 1
            # The first call after the open spell is always a probe.
            self._probe_credit = 1.0
            self._ho_probes = self._ho_successes = 0
            logger.info("circuit %s open -> half_open: %s", self.name, reason)
        else:
            self._n_closed += 1
            self._clear_window()
            self._open_s = self.rule.open_s
            logger.info("circuit %s %s -> closed: %s", self.name, frm.value, reason)

    # -- operator actions ------------------------------------------------------------------

    def force_open(self) -> None:
        """Hold the breaker open (every call fails fast) until force_closed() or reset()."""
        with self._lock:
            self._forced = _OPEN
            self._trips = self.rule.enabled
            self._transition(_OPEN, self._now(), "forced open by operator")

    def force_closed(self) -> None:
        """Hold the breaker closed (calls pass, stats recorded, never trips) until reset()."""
        with self._lock:
            self._forced = _CLOSED
            self._trips = False
            self._transition(_CLOSED, self._now(), "forced closed by operator")

    def reset(self) -> None:
        """Back to a fresh closed breaker: no forcing, empty window, base open time."""
        with self._lock:
            self._forced = None
            self._trips = self.rule.enabled
            self._transition(_CLOSED, self._now(), "reset by operator")

    # -- API -------------------------------------------------------------------------------

    @property
    def state(self) -> State:
        """The state as of the last call (an elapsed open spell turns half-open lazily)."""
        return self._state

    async def call(self, fn: Callable[P, Awaitable[T]], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Await ``fn(*args, **kwargs)`` under the breaker."""
        start = self._now()
        ticket = 0 if self._state is _CLOSED else self._admit(start)
        try:
            result = await fn(*args, **kwargs)
        except Exception:
            self._record(start, self._now(), True, ticket)
            raise
        self._record(start, self._now(), False, ticket)
        return result

    def call_sync(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Run ``fn(*args, **kwargs)`` under the breaker (for code running in threads)."""
        start = self._now()
        ticket = 0 if self._state is _CLOSED else self._admit(start)
        try:
            result = fn(*args, **kwargs)
        except Exception:
            self._record(start, self._now(), True, ticket)
            raise
        self._record(start, self._now(), False, ticket)
        return result

    def _enter(self) -> None:
        start = self._now()
        ticket = 0 if self._state is _CLOSED else self._admit(start)
        _ACTIVE.set((self, start, ticket, _ACTIVE.get()))

    def _exit(self, exc_type: type[BaseException] | None) -> None:
        entry = _ACTIVE.get()
        if entry is None or entry[0] is not self:
            # Blocks exited out of order (interleaved async generators): nothing to match
            # the start time against, so this one call goes unrecorded.
            return
        _, start, ticket, prev = entry
        _ACTIVE.set(prev)
        if exc_type is None:
            self._record(start, self._now(), False, ticket)
        elif issubclass(exc_type, Exception):
            self._record(start, self._now(), True, ticket)
        # BaseException (cancellation, interpreter exit) says nothing about the dependency.

    async def __aenter__(self) -> Breaker:
        # _enter() inlined: this is the hot path of ``async with``.
        start = self._now()
        ticket = 0 if self._state is _CLOSED else self._admit(start)
        _ACTIVE.set((self, start, ticket, _ACTIVE.get()))
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._exit(exc_type)

    def __enter__(self) -> Breaker:
        self._enter()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._exit(exc_type)

    def counters(self) -> dict[str, int]:
        """Totals since start: outcomes, fail-fast rejections and transitions."""
        return {
            "calls": self._n_successes + self._n_failures,
            "successes": self._n_successes,
            "failures": self._n_failures,
            "slow": self._n_slow,
            "rejected": self._n_rejected,
            "opened": self._n_opened,
            "half_opened": self._n_half_opened,
            "closed": self._n_closed,
        }

    def snapshot(self) -> dict[str, Any]:
        """State, window counts, ratios, last transition and counters for the console."""
        with self._lock:
            now = self._now()
            idx = int(now * self._inv_bucket_s)
            if idx > self._cur_idx:
                self._advance(idx)
            total = self._sum_total
            open_until = self._open_until if self._state is _OPEN else None
            retry_ms = None
            if open_until is not None and math.isfinite(open_until):
                retry_ms = max(0, math.ceil((open_until - now) * 1000.0))
            return {
                "name": self.name,
                "state": self._state.value,
                "forced": self._forced.value if self._forced else None,
                "rule": self.rule.to_dict(),
                "window": {"total": total, "errors": self._sum_errors, "slow": self._sum_slow},
                "error_ratio": self._sum_errors / total if total else 0.0,
                "slow_ratio": self._sum_slow / total if total else 0.0,
                "open_s": self._open_s,
                "retry_after_ms": retry_ms,
                "half_open": {"probes": self._ho_probes, "successes": self._ho_successes},
                "last_transition": dict(self._last),
                "counters": self.counters(),
            }


class BreakerRegistry:
    """Named breakers, created on first use; ``set_rules`` updates them live."""

    def __init__(self, rules: Iterable[BreakerRule] = (), *, clock: Clock = MONOTONIC) -> None:
        self._clock = clock
        self._rules: dict[str, BreakerRule] = {}
        self._breakers: dict[str, Breaker] = {}
        self._lock = threading.Lock()
        self.set_rules(rules)

    def rule_for(self, name: str) -> BreakerRule:
        """The configured rule, or the permissive :func:`default_rule`."""
        rule = self._rules.get(name)
        return rule if rule is not None else default_rule(name)

    def breaker(self, name: str) -> Breaker:
        breaker = self._breakers.get(name)
        if breaker is None:
            with self._lock:
                breaker = self._breakers.get(name)
                if breaker is None:
                    breaker = Breaker(name, self.rule_for(name), self._clock)
                    self._breakers[name] = breaker
        return breaker

    def protect(
        self, name: str
    ) -> Callable[[Callable[P, Awaitable[T]]], Callable[P, Coroutine[Any, Any, T]]]:
        """Decorator: run an async function under breaker ``name``."""

        def decorate(fn: Callable[P, Awaitable[T]]) -> Callable[P, Coroutine[Any, Any, T]]:
            breaker = self.breaker(name)

            @functools.wraps(fn)
            async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
                return await breaker.call(fn, *args, **kwargs)

            return wrapper

        return decorate

    def set_rules(self, rules: Iterable[BreakerRule]) -> None:
        """Replace the rules; breakers keep their state and adopt the new (or default) rule."""
        new: dict[str, BreakerRule] = {}
        for rule in rules:
            if not isinstance(rule, BreakerRule):
                raise RuleError(f"not a BreakerRule: {rule!r}")
            if rule.resource in new:
                raise RuleError(f"two breaker rules for {rule.resource}")
            new[rule.resource] = rule
        with self._lock:
            self._rules = new
            breakers = list(self._breakers.values())
        for breaker in breakers:
            breaker.apply_rule(self.rule_for(breaker.name))

    def rules(self) -> list[BreakerRule]:
        return list(self._rules.values())

    def snapshot(self) -> list[dict[str, Any]]:
        return [b.snapshot() for b in list(self._breakers.values())]

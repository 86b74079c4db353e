"""Circuit-breaker rules: what trips a breaker, for how long it stays open, how it probes.

Split from ``breaker.py`` (the state machine) so the console and the worker can import the
rule type alone. Validation here is what the console's forms enforce.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from gamebackend.flow.bucket import RuleError, show_number

DEFAULT_PROBE_RATIO = 0.05
DEFAULT_HALF_OPEN_SUCCESSES = 3
DEFAULT_MIN_REQUESTS = 20
DEFAULT_STAT_WINDOW_S = 10.0
DEFAULT_OPEN_S = 5.0

# Bounds of a rule's numbers (docs/FLOW.md), so a typo cannot switch a breaker off while it
# looks configured (a threshold of 1e300 failures never trips; an open time of 1e300 s never
# recovers). Counts and ratios beyond these mean nothing for one node's calls.
MAX_COUNT = 1_000_000
# The window is kept in WINDOW_BUCKETS ring slots; an hour is already a very slow signal.
MAX_STAT_WINDOW_S = 3_600.0
# A call slower than ten minutes is not "slow", it is hung.
MAX_RT_MS = 600_000.0
# Longest open spell a rule may ask for (failed probes double it only up to breaker.MAX_OPEN_S
# unless this is longer).
MAX_RULE_OPEN_S = 3_600.0
# Shortest window and open spell: below a tenth of a second, timing noise decides.
MIN_SECONDS = 0.1


class Strategy(StrEnum):
    ERROR_RATIO = "error_ratio"
    ERROR_COUNT = "error_count"
    SLOW_RATIO = "slow_ratio"


def _number(name: str, value: object, *, low: float, high: float, open_low: bool = True) -> float:
    """Validate ``low < value <= high`` (or ``low <= value`` when not ``open_low``), finite."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise RuleError(f"{name} must be a number, got {value!r}")
    too_low = value <= low if open_low else value < low
    if not math.isfinite(value) or too_low or value > high:
        left = "(" if open_low else "["
        bounds = f"{left}{show_number(low)}, {show_number(high)}]"
        raise RuleError(f"{name} must be in {bounds}, got {value!r}")
    return float(value)


def _count(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise RuleError(f"{name} must be a whole number, got {value!r}")
    if value != int(value):
        raise RuleError(f"{name} must be a whole number, got {value!r}")
    if not 1 <= value <= MAX_COUNT:
        raise RuleError(f"{name} must be in [1, {MAX_COUNT:,}], got {value!r}")
    return int(value)


@dataclass(frozen=True, slots=True)
class BreakerRule:
    """When a breaker opens, for how long, and how it probes its way back."""

    resource: str
    strategy: Strategy
    # error_ratio / slow_ratio: share in (0, 1] that trips; error_count: failures that trip.
    threshold: float
    min_requests: int = DEFAULT_MIN_REQUESTS
    stat_window_s: float = DEFAULT_STAT_WINDOW_S
    max_rt_ms: float = 0.0  # slow_ratio: a call slower than this is slow
    open_s: float = DEFAULT_OPEN_S
    half_open_probe_ratio: float = DEFAULT_PROBE_RATIO
    half_open_successes: int = DEFAULT_HALF_OPEN_SUCCESSES
    enabled: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.resource, str) or not self.resource:
            raise RuleError(f"resource must be a non-empty string, got {self.resource!r}")
        set_ = object.__setattr__
        try:
            set_(self, "strategy", Strategy(self.strategy))
        except ValueError:
            known = ", ".join(s.value for s in Strategy)
            raise RuleError(f"unknown strategy {self.strategy!r} (known: {known})") from None
        if self.strategy is Strategy.ERROR_COUNT:
            set_(self, "threshold", float(_count("threshold", self.threshold)))
        else:
            set_(self, "threshold", _number("threshold", self.threshold, low=0.0, high=1.0))
        set_(self, "min_requests", _count("min_requests", self.min_requests))
        window = _number(
            "stat_window_s", self.stat_window_s, low=MIN_SECONDS, high=MAX_STAT_WINDOW_S,
            open_low=False,
        )  # fmt: skip
        set_(self, "stat_window_s", window)
        # Required for slow_ratio; optional elsewhere, where it only feeds the slow counter.
        if self.strategy is Strategy.SLOW_RATIO or self.max_rt_ms:
            set_(self, "max_rt_ms", _number("max_rt_ms", self.max_rt_ms, low=0.0, high=MAX_RT_MS))
        open_s = _number(
            "open_s", self.open_s, low=MIN_SECONDS, high=MAX_RULE_OPEN_S, open_low=False
        )
        set_(self, "open_s", open_s)
        ratio = _number("half_open_probe_ratio", self.half_open_probe_ratio, low=0.0, high=1.0)
        set_(self, "half_open_probe_ratio", ratio)
        set_(self, "half_open_successes", _count("half_open_successes", self.half_open_successes))
        if not isinstance(self.enabled, bool):
            raise RuleError(f"enabled must be a bool, got {self.enabled!r}")

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


def default_rule(resource: str) -> BreakerRule:
    """The permissive rule of a name nobody configured: it opens only when every one of at
    least 20 calls in the last 10 s failed, i.e. the dependency is down, never when it is
    merely degraded."""
    return BreakerRule(resource, Strategy.ERROR_RATIO, threshold=1.0)

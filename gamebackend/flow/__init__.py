"""Flow control: token-bucket rate limiting and circuit breakers (pure logic, no Django).

See docs/FLOW.md for the rule fields, behaviours and API.
"""

from gamebackend.flow.breaker import (
    Breaker,
    BreakerRegistry,
    BreakerRule,
    CircuitOpen,
    State,
    Strategy,
    default_rule,
)
from gamebackend.flow.bucket import (
    ALLOWED,
    Behavior,
    Decision,
    Gate,
    Limiter,
    Rule,
    RuleError,
    Scope,
    TokenBucket,
)
from gamebackend.flow.clock import MONOTONIC, Clock, ManualClock, MonotonicClock

__all__ = [
    "ALLOWED",
    "MONOTONIC",
    "Behavior",
    "Breaker",
    "BreakerRegistry",
    "BreakerRule",
    "CircuitOpen",
    "Clock",
    "Decision",
    "Gate",
    "Limiter",
    "ManualClock",
    "MonotonicClock",
    "Rule",
    "RuleError",
    "Scope",
    "State",
    "Strategy",
    "TokenBucket",
    "default_rule",
]

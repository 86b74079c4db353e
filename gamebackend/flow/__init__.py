"""Flow control: token-bucket rate limiting and circuit breakers.

The package exports its pure core (``bucket``, ``breaker``, ``clock``: no Django, no I/O).
The Django side lives beside it: rules as models edited in the console (``models``,
``services``), their synchronisation into every process (``rulesync``, ``events``) and the
one admission call the gateway and the HTTP API make (``admission.admit``). See
docs/FLOW.md.
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

"""Supervision strategy: what happens to an actor whose handler raised."""

from __future__ import annotations

import enum
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

from ._pid import PID

logger = logging.getLogger("actors")

DEFAULT_MAX_RESTARTS = 10
DEFAULT_RESTART_WINDOW_S = 60.0
# First restart waits 0.1 s, doubling per consecutive failure up to 5 s, so a crash loop
# costs little CPU and log volume while a one-off failure recovers almost at once.
DEFAULT_BACKOFF_S = (0.1, 5.0)


class Directive(enum.Enum):
    RESUME = "resume"  # drop the failing message, keep the instance and its state
    RESTART = "restart"  # fresh instance from the same constructor arguments, mailbox kept
    STOP = "stop"  # run on_stop and terminate
    ESCALATE = "escalate"  # stop this actor and fail its parent with the same exception


def restart_on_exception(exc: BaseException) -> Directive:
    """Default decider: every exception restarts the actor."""
    return Directive.RESTART


class Plan(NamedTuple):
    """What to do about one failure."""

    directive: Directive
    delay: float = 0.0  # seconds before a RESTART
    budget_exhausted: bool = False  # a RESTART was wanted but the budget is spent


@dataclass(frozen=True, slots=True)
class Terminated:
    """Told to a parent actor when one of its children stopped.

    `reason` is None for a requested stop, else the exception that ended the child.
    """

    pid: PID
    reason: BaseException | None = None


class OneForOne:
    """Decide per failing actor; siblings are never affected.

    `max_restarts` restarts are allowed within any `within_s` window; the next failure that
    asks for a restart stops the actor instead and its parent is told.
    """

    __slots__ = ("backoff", "decider", "max_restarts", "within_s")

    def __init__(
        self,
        max_restarts: int = DEFAULT_MAX_RESTARTS,
        within_s: float = DEFAULT_RESTART_WINDOW_S,
        backoff: tuple[float, float] = DEFAULT_BACKOFF_S,
        decider: Callable[[BaseException], Directive] = restart_on_exception,
    ) -> None:
        if max_restarts < 0:
            raise ValueError("max_restarts must be >= 0")
        if within_s <= 0:
            raise ValueError("within_s must be > 0")
        low, high = backoff
        if low < 0 or high < low:
            raise ValueError("backoff must be (min, cap) with 0 <= min <= cap")
        self.max_restarts = max_restarts
        self.within_s = within_s
        self.backoff = (float(low), float(high))
        self.decider = decider

    def decide(self, exc: BaseException) -> Directive:
        return self.decider(exc)

    def backoff_delay(self, consecutive_failures: int) -> float:
        """Delay before restart number `consecutive_failures` (1-based) of a failure streak."""
        low, high = self.backoff
        if low <= 0 or consecutive_failures <= 1:
            return min(low, high)
        # Cap the exponent too: 2**1024 would overflow a float.
        return min(high, low * 2.0 ** min(consecutive_failures - 1, 64))

    def allow_restart(self, history: deque[float], now: float) -> bool:
        """Record a restart at `now` if the budget allows it; `history` holds past restarts."""
        horizon = now - self.within_s
        while history and history[0] <= horizon:
            history.popleft()
        if len(history) >= self.max_restarts:
            return False
        history.append(now)
        return True

    def plan(self, exc: BaseException, history: deque[float], consecutive: int, now: float) -> Plan:
        """Directive for one failure plus, for RESTART, the delay before restarting.

        A RESTART beyond the budget comes back as a STOP (budget_exhausted); a decider that
        raises is treated as STOP, since a broken policy must not crash the runtime.
        """
        try:
            directive = self.decide(exc)
        except Exception:
            logger.exception("supervisor decider raised on %r; stopping the actor", exc)
            return Plan(Directive.STOP)
        if directive is not Directive.RESTART:
            return Plan(directive)
        if not self.allow_restart(history, now):
            return Plan(Directive.STOP, budget_exhausted=True)
        return Plan(Directive.RESTART, self.backoff_delay(consecutive))

    def __repr__(self) -> str:
        return (
            f"OneForOne(max_restarts={self.max_restarts}, within_s={self.within_s}, "
            f"backoff={self.backoff})"
        )


DEFAULT_STRATEGY = OneForOne()

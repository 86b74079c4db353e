"""Reconnect delays: exponential backoff with jitter."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Final

# 1 s, 2 s, 4 s ... capped at 30 s (the contract's SDK behaviour).
DEFAULT_BASE_S: Final = 1.0
DEFAULT_FACTOR: Final = 2.0
DEFAULT_CAP_S: Final = 30.0
# Each delay is drawn from [nominal * (1 - jitter), nominal] so a server restart does not
# get every client back in the same instant, while never exceeding the cap.
DEFAULT_JITTER: Final = 0.25


class Backoff:
    """`next_delay()` yields the next wait; `reset()` after a connection that worked.

    Inject `rng` (returns floats in [0, 1)) or tiny `base_s` / `cap_s` values in tests.
    """

    def __init__(
        self,
        *,
        base_s: float = DEFAULT_BASE_S,
        factor: float = DEFAULT_FACTOR,
        cap_s: float = DEFAULT_CAP_S,
        jitter: float = DEFAULT_JITTER,
        rng: Callable[[], float] = random.random,
    ) -> None:
        if base_s < 0 or cap_s < 0 or factor < 1 or not 0 <= jitter <= 1:
            raise ValueError("need base_s >= 0, cap_s >= 0, factor >= 1, 0 <= jitter <= 1")
        self.base_s = base_s
        self.factor = factor
        self.cap_s = cap_s
        self.jitter = jitter
        self._rng = rng
        self.attempt = 0

    def nominal(self, attempt: int) -> float:
        """The un-jittered delay before retry number `attempt` (0-based)."""
        # Stop multiplying once capped so huge attempt counts cannot overflow.
        delay = self.base_s
        for _ in range(attempt):
            delay *= self.factor
            if delay >= self.cap_s:
                return self.cap_s
        return min(delay, self.cap_s)

    def next_delay(self) -> float:
        nominal = self.nominal(self.attempt)
        self.attempt += 1
        return nominal * (1.0 - self.jitter * self._rng())

    def reset(self) -> None:
        self.attempt = 0

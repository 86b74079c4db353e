"""Dead letters: messages for actors that are unknown or stopped. Counted, logged sparingly."""

from __future__ import annotations

import logging
import time
from typing import Any

logger = logging.getLogger("actors.deadletters")

# A flood of dead letters (e.g. a room broadcasting to players that just left) must not
# flood the log: one line per interval, carrying the number of lines it stands for.
DEAD_LETTER_LOG_INTERVAL_S = 1.0


class DeadLetters:
    __slots__ = ("_last_log", "_suppressed", "count")

    def __init__(self) -> None:
        self.count = 0
        self._suppressed = 0
        self._last_log = -DEAD_LETTER_LOG_INTERVAL_S

    def record(self, target: object, msg: Any, why: str) -> None:
        self.count += 1
        now = time.monotonic()
        if now - self._last_log < DEAD_LETTER_LOG_INTERVAL_S:
            self._suppressed += 1
            return
        suppressed, self._suppressed = self._suppressed, 0
        self._last_log = now
        logger.info(
            "dead letter: %s to %s (%s); %d more suppressed since the last report",
            type(msg).__name__,
            target,
            why,
            suppressed,
        )

"""Application-level heartbeat for every connection of the node, driven by one task.

Any inbound frame proves the client alive (the consumer sets ``hb_alive``), so only
connections that were silent for a whole interval are pinged: a playing client costs no
heartbeat traffic at all. A silent connection is pinged once per interval and closed
(4408) when ``misses`` pings in a row found it still silent.

A timer per connection would cost a heap entry and a callback each; instead connections
sit in ``SLOTS`` buckets of a wheel and one task visits one bucket per tick, so each
connection is looked at once per interval and the cost per tick is only the due bucket.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Protocol

logger = logging.getLogger(__name__)

# Buckets per interval: a connection's first ping comes between (1 - 1/SLOTS) and 1
# interval after it joined.
SLOTS = 15


class Heartbeating(Protocol):
    hb_slot: int
    hb_outstanding: int
    hb_last_ts: int
    # Set by the connection on every inbound frame; cleared by the wheel's visit.
    hb_alive: bool

    async def heartbeat_ping(self, ts: int) -> None: ...

    async def heartbeat_timeout(self) -> None: ...


def wall_ms() -> int:
    return int(time.time() * 1000)


class HeartbeatWheel:
    def __init__(
        self, interval_s: float, misses: int, *, now_ms: Callable[[], int] = wall_ms
    ) -> None:
        if interval_s <= 0 or misses < 1:
            raise ValueError("heartbeat interval must be > 0 and misses >= 1")
        self.interval_s = interval_s
        self.misses = misses
        self._now_ms = now_ms
        self._slots: list[dict[int, Heartbeating]] = [{} for _ in range(SLOTS)]
        self._cursor = 0
        self.pings_sent = 0
        self.timeouts = 0

    def __len__(self) -> int:
        return sum(len(slot) for slot in self._slots)

    def add(self, conn: Heartbeating) -> None:
        # The slot visited last in the current round: a full interval before its first ping.
        slot = (self._cursor - 1) % SLOTS
        conn.hb_slot = slot
        conn.hb_outstanding = 0
        conn.hb_alive = False
        self._slots[slot][id(conn)] = conn

    def remove(self, conn: Heartbeating) -> None:
        self._slots[conn.hb_slot].pop(id(conn), None)

    @staticmethod
    def pong(conn: Heartbeating, ts: object) -> None:
        """A pong for one of our pings proves the client alive: clear the misses."""
        if isinstance(ts, int) and 0 < ts <= conn.hb_last_ts:
            conn.hb_outstanding = 0

    async def tick(self) -> None:
        """Visit the due bucket: skip the ones heard from, time out or ping the silent ones."""
        bucket = self._slots[self._cursor]
        self._cursor = (self._cursor + 1) % SLOTS
        if not bucket:
            return
        ts = self._now_ms()
        for conn in list(bucket.values()):
            if conn.hb_alive:
                # Heard from within the last interval: alive, nothing to send.
                conn.hb_alive = False
                conn.hb_outstanding = 0
                continue
            try:
                if conn.hb_outstanding >= self.misses:
                    self.remove(conn)
                    self.timeouts += 1
                    await conn.heartbeat_timeout()
                else:
                    conn.hb_outstanding += 1
                    conn.hb_last_ts = ts
                    self.pings_sent += 1
                    await conn.heartbeat_ping(ts)
            except Exception:
                # One broken connection must not stop the heartbeat of all the others.
                logger.exception("heartbeat for a connection failed")

    async def run(self) -> None:
        """Tick at a fixed rate (deadlines from the start, so no drift) until cancelled."""
        loop = asyncio.get_running_loop()
        step = self.interval_s / SLOTS
        start = loop.time()
        n = 0
        while True:
            n += 1
            await asyncio.sleep(max(0.0, start + n * step - loop.time()))
            await self.tick()

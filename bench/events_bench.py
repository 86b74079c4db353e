"""The in-process event bus: events/s through 8 workers and p99 publish-to-handle latency.

Run: ``.venv/bin/python bench/events_bench.py`` (about 20 s; one core, uvloop as the node).
The publisher sends EVENTS events in bursts of BURST, yielding to the loop between bursts
(as a game tick would); each handler records ``now - event.published``. Baseline in the
same run: calling the handler directly (no queue, no workers). Medians of REPEATS runs.
The seed's table: channel + 8 workers, 41k events/s, p99 18 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import uvloop

from gamebackend.events.bus import DomainEvent, EventBus

REPEATS = 5
EVENTS = 200_000
BURST = 256
WORKERS = 8
QUEUE_MAX = 10_000
GOAL_EVENTS_S = 41_000
GOAL_P99_MS = 18.0


def p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[int(len(ordered) * 0.99) - 1]


async def through_bus(workers: int) -> tuple[float, float, int]:
    bus = EventBus(workers=workers, queue_max=QUEUE_MAX)
    lags: list[float] = []
    done = asyncio.Event()

    def handler(event: DomainEvent) -> None:
        lags.append(time.monotonic() - event.published)
        if len(lags) + bus.dropped >= EVENTS:
            done.set()

    bus.subscribe("player.online", handler)
    bus.start()
    data = {"player_id": "p"}
    start = time.perf_counter()
    for sent in range(0, EVENTS, BURST):
        for _ in range(min(BURST, EVENTS - sent)):
            bus.publish(DomainEvent("player.online", data))
        await asyncio.sleep(0)
    await done.wait()
    elapsed = time.perf_counter() - start
    await bus.close()
    return len(lags) / elapsed, p99(lags) * 1000, bus.dropped


async def direct() -> float:
    count = 0

    def handler(event: DomainEvent) -> None:
        nonlocal count
        count += 1

    data = {"player_id": "p"}
    start = time.perf_counter()
    for _ in range(EVENTS):
        handler(DomainEvent("player.online", data))
    return EVENTS / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=REPEATS)
    args = parser.parse_args()
    rates, lags, drops, base = [], [], [], []
    for _ in range(args.repeats):
        rate, lag, dropped = uvloop.run(through_bus(WORKERS))
        rates.append(rate)
        lags.append(lag)
        drops.append(dropped)
        base.append(uvloop.run(direct()))
    rate, lag = statistics.median(rates), statistics.median(lags)
    print(f"events: {EVENTS} in bursts of {BURST}, {WORKERS} workers, queue {QUEUE_MAX}")
    print(f"baseline (direct call, event built): {statistics.median(base):,.0f} events/s")
    print(f"bus: {rate:,.0f} events/s (goal >= {GOAL_EVENTS_S:,}), ratio to baseline "
          f"{rate / statistics.median(base):.2f}")  # fmt: skip
    print(f"publish-to-handle p99: {lag:.2f} ms (goal <= {GOAL_P99_MS} ms); drops {max(drops)}")


if __name__ == "__main__":
    main()

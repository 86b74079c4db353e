"""Cost per check of flow control: local buckets, cluster buckets, breaker overhead.

Run: ``.venv/bin/python bench/flow_bench.py`` (under a minute). Redis rows need the test
Redis (``GAME_TEST_REDIS_URL``, default redis://127.0.0.1:6379/15) and are skipped without
it. Every figure is the median of REPEATS runs; baselines (an empty loop, a direct
function call, a bare PING) are measured in the same run. ``--markdown PATH`` also writes
the table as the "Flow control" section of docs/BENCHMARKS-flow.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from redis.asyncio import Redis

from gamebackend.flow.breaker import BreakerRegistry
from gamebackend.flow.bucket import MAX_BURST, MAX_RATE, Limiter, Rule, Scope, TokenBucket
from gamebackend.flow.cluster_bucket import ClusterBucket

REPEATS = 7
LOCAL_OPS = 200_000
ASYNC_OPS = 50_000
REDIS_SEQUENTIAL_OPS = 500
REDIS_BATCH = 100
REDIS_BATCHES = 20
REDIS_URL = os.environ.get("GAME_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
# Bound for the benchmark's Redis calls: generous, so a slow answer on a noisy machine is
# measured rather than turned into a fallback.
BENCH_REDIS_TIMEOUT_S = 2.0
GOAL_LOCAL_US = 2.0
GOAL_BREAKER_US = 2.0

# Rules nobody exceeds (the highest a rule may be): the benchmark measures the admitted
# (hot) path.
OPEN_RULE = Rule("bench.move", Scope.PLAYER, rate=MAX_RATE, burst=MAX_BURST)
CLUSTER_RULE = Rule("bench.cluster", Scope.CLUSTER, rate=MAX_RATE, burst=MAX_BURST)


def median_us(run: Callable[[], float], ops: int) -> float:
    """Median over REPEATS of ``run()`` (seconds for ``ops`` operations), per op in µs."""
    return statistics.median(run() for _ in range(REPEATS)) / ops * 1e6


def timed_loop(fn: Callable[[], object], ops: int) -> Callable[[], float]:
    def run() -> float:
        start = time.perf_counter()
        for _ in range(ops):
            fn()
        return time.perf_counter() - start

    return run


async def amedian_us(run: Callable[[], Awaitable[float]], ops: int) -> float:
    samples = [await run() for _ in range(REPEATS)]
    return statistics.median(samples) / ops * 1e6


def fresh_each_run(setup: Callable[[], Callable[[], object]], ops: int) -> Callable[[], float]:
    """A timed loop over a check built anew for every repeat: with ``now`` held still (or
    barely moving) a shared bucket would run dry after a million checks and the later
    repeats would measure the rejection path instead."""

    def run() -> float:
        return timed_loop(setup(), ops)()

    return run


def local_rows() -> list[tuple[str, float, str]]:
    now = time.monotonic()
    limiter = Limiter([OPEN_RULE])
    gate = limiter.gate("bench.move", "player")
    keys = [f"p{i}" for i in range(10_000)]
    for key in keys:
        gate.check(key, now)

    def noop() -> None:
        return None

    def bucket_check() -> Callable[[], object]:
        bucket = TokenBucket(OPEN_RULE, now)
        return lambda: bucket.try_acquire(now)

    def hot_gate_check() -> Callable[[], object]:
        hot = Limiter([OPEN_RULE]).gate("bench.move", "player")
        return lambda: hot.check("p1", now)

    def limiter_check() -> Callable[[], object]:
        fresh = Limiter([OPEN_RULE])
        return lambda: fresh.check("bench.move", "player", "p1")

    def gate_many() -> float:
        start = time.perf_counter()
        check = gate.check
        for i in range(LOCAL_OPS):
            check(keys[i % 10_000], now)
        return time.perf_counter() - start

    empty = median_us(timed_loop(noop, LOCAL_OPS), LOCAL_OPS)
    return [
        ("empty loop + call (baseline)", empty, ""),
        (
            "TokenBucket.try_acquire(now)",
            median_us(fresh_each_run(bucket_check, LOCAL_OPS), LOCAL_OPS),
            f"< {GOAL_LOCAL_US:g} µs",
        ),
        (
            "Gate.check(key, now), 1 hot key",
            median_us(fresh_each_run(hot_gate_check, LOCAL_OPS), LOCAL_OPS),
            f"< {GOAL_LOCAL_US:g} µs",
        ),
        (
            "Gate.check(key, now), 10k keys",
            median_us(gate_many, LOCAL_OPS),
            f"< {GOAL_LOCAL_US:g} µs",
        ),
        (
            "Limiter.check(res, scope, key) (clock read)",
            median_us(fresh_each_run(limiter_check, LOCAL_OPS), LOCAL_OPS),
            f"< {GOAL_LOCAL_US:g} µs",
        ),
    ]


async def breaker_rows() -> list[tuple[str, float, str]]:
    breaker = BreakerRegistry().breaker("bench.svc")

    async def work() -> int:
        return 1

    def sync_work() -> int:
        return 1

    async def direct() -> float:
        start = time.perf_counter()
        for _ in range(ASYNC_OPS):
            await work()
        return time.perf_counter() - start

    async def via_call() -> float:
        call = breaker.call
        start = time.perf_counter()
        for _ in range(ASYNC_OPS):
            await call(work)
        return time.perf_counter() - start

    async def via_context() -> float:
        start = time.perf_counter()
        for _ in range(ASYNC_OPS):
            async with breaker:
                await work()
        return time.perf_counter() - start

    # Interleave the variants so machine noise hits them alike, then take medians.
    samples: dict[str, list[float]] = {"direct": [], "call": [], "ctx": []}
    for _ in range(REPEATS):
        samples["direct"].append(await direct())
        samples["call"].append(await via_call())
        samples["ctx"].append(await via_context())
    per = {k: statistics.median(v) / ASYNC_OPS * 1e6 for k, v in samples.items()}
    sync_direct = median_us(timed_loop(sync_work, LOCAL_OPS), LOCAL_OPS)
    sync_call = median_us(timed_loop(lambda: breaker.call_sync(sync_work), LOCAL_OPS), LOCAL_OPS)
    goal = f"overhead < {GOAL_BREAKER_US:g} µs"
    return [
        ("await fn() directly (baseline)", per["direct"], ""),
        ("await breaker.call(fn), closed", per["call"], goal),
        ("  overhead of call()", per["call"] - per["direct"], goal),
        ("async with breaker: await fn(), closed", per["ctx"], ""),
        ("  overhead of async with", per["ctx"] - per["direct"], goal),
        ("fn() directly (sync baseline)", sync_direct, ""),
        ("breaker.call_sync(fn), closed", sync_call, ""),
        ("  overhead of call_sync()", sync_call - sync_direct, goal),
    ]


async def redis_rows() -> list[tuple[str, float, str]]:
    client = Redis.from_url(REDIS_URL)
    try:
        await asyncio.wait_for(client.ping(), timeout=1.0)
    except Exception as exc:
        await client.aclose()
        print(f"(Redis rows skipped: {REDIS_URL} does not answer: {exc!r})")
        return []
    prefix = f"bench:flow:{uuid.uuid4().hex}:"
    node = ClusterBucket(client, prefix=prefix, timeout_s=BENCH_REDIS_TIMEOUT_S)
    unbatched = ClusterBucket(
        client, prefix=prefix, timeout_s=BENCH_REDIS_TIMEOUT_S, batching=False
    )
    try:
        await node.acquire("warm", CLUSTER_RULE)  # script cached, connection open
        await node.acquire_many([("warm", CLUSTER_RULE)] * 2)

        async def ping() -> float:
            start = time.perf_counter()
            for _ in range(REDIS_SEQUENTIAL_OPS):
                await client.ping()
            return time.perf_counter() - start

        async def sequential(bucket: ClusterBucket) -> float:
            start = time.perf_counter()
            for i in range(REDIS_SEQUENTIAL_OPS):
                await bucket.acquire(f"k{i % 100}", CLUSTER_RULE)
            return time.perf_counter() - start

        async def many() -> float:
            items = [(f"k{i}", CLUSTER_RULE) for i in range(REDIS_BATCH)]
            start = time.perf_counter()
            for _ in range(REDIS_BATCHES):
                await node.acquire_many(items)
            return time.perf_counter() - start

        async def gathered() -> float:
            start = time.perf_counter()
            for _ in range(REDIS_BATCHES):
                await asyncio.gather(
                    *(node.acquire(f"k{i}", CLUSTER_RULE) for i in range(REDIS_BATCH))
                )
            return time.perf_counter() - start

        batch_ops = REDIS_BATCH * REDIS_BATCHES
        rtt = await amedian_us(ping, REDIS_SEQUENTIAL_OPS)
        goal = f"<= 1 round trip ({rtt:.0f} µs)"
        amortised = "< 1 round trip, amortised"
        rows = [
            ("redis PING round trip (baseline)", rtt, ""),
            (
                "ClusterBucket.acquire, sequential, EVALSHA",
                await amedian_us(lambda: sequential(unbatched), REDIS_SEQUENTIAL_OPS),
                goal,
            ),
            (
                "ClusterBucket.acquire, sequential, micro-batcher",
                await amedian_us(lambda: sequential(node), REDIS_SEQUENTIAL_OPS),
                goal,
            ),
            (
                f"acquire_many, pipelined batches of {REDIS_BATCH}",
                await amedian_us(many, batch_ops),
                amortised,
            ),
            (
                f"{REDIS_BATCH} concurrent acquire() (auto-batched)",
                await amedian_us(gathered, batch_ops),
                amortised,
            ),
        ]
        return rows
    finally:
        await node.close()
        await unbatched.close()
        keys = [key async for key in client.scan_iter(match=f"{prefix}*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()


def render(rows: list[tuple[str, float, str]]) -> str:
    width = max(len(name) for name, _, _ in rows)
    lines = [f"| {'check':<{width}} | µs per check | goal |", f"|{'-' * (width + 2)}|---:|---|"]
    lines += [f"| {name:<{width}} | {us:10.2f} | {goal} |" for name, us, goal in rows]
    return "\n".join(lines)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--markdown", type=Path, help="write the table to this file")
    args = parser.parse_args()
    started = time.perf_counter()
    rows = local_rows()
    rows += await breaker_rows()
    rows += await redis_rows()
    table = render(rows)
    print(table)
    print(f"\n({time.perf_counter() - started:.1f} s, Python {platform.python_version()}, "
          f"{os.cpu_count()} CPUs, medians of {REPEATS} runs)")  # fmt: skip
    if args.markdown:
        args.markdown.write_text(
            "## Flow control\n\n"
            "Reproduce: `.venv/bin/python bench/flow_bench.py` (Redis rows need the test Redis).\n"
            f"Python {platform.python_version()}, {os.cpu_count()} CPUs; medians of {REPEATS}"
            " runs.\n\n" + table + "\n"
        )


if __name__ == "__main__":
    asyncio.run(main())

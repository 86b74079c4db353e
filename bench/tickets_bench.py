"""Cost of ticket replay protection per connect: memory only vs the SQLite journal.

Run: ``.venv/bin/python bench/tickets_bench.py`` (about half a minute). Baselines measured
in the same run: verifying a ticket (HS256, the claims) and a claim in memory. Every
figure is the median of REPEATS runs; latencies of concurrent claims are p50/p99 over all
claims of the median run. The journal lives in a temporary directory on the same disk as
the repository (``var/``).
"""

from __future__ import annotations

import asyncio
import platform
import secrets
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gamebackend.gateway.replay import DurableReplayStore, LocalReplayStore
from gamebackend.gateway.tickets import verify_ticket
from gameproto.tickets import mint_ticket

REPEATS = 5
VERIFY_OPS = 5_000
MEMORY_OPS = 100_000
SEQUENTIAL_OPS = 1_000
CONCURRENT = 100
CONCURRENT_ROUNDS = 20
# A fresh signing key per run (the figures do not depend on its value).
SECRET = secrets.token_urlsafe(32)
TTL_S = 30.0


def jtis(count: int) -> list[str]:
    return [uuid.uuid4().hex for _ in range(count)]


def verify_us() -> float:
    token = mint_ticket(secret=SECRET, sub="bench-player")

    def run() -> float:
        start = time.perf_counter()
        for _ in range(VERIFY_OPS):
            verify_ticket(token, secret=SECRET)
        return time.perf_counter() - start

    return statistics.median(run() for _ in range(REPEATS)) / VERIFY_OPS * 1e6


async def memory_us() -> float:
    async def run() -> float:
        store = LocalReplayStore()
        exp = time.time() + TTL_S
        ids = jtis(MEMORY_OPS)
        start = time.perf_counter()
        for jti in ids:
            await store.claim(jti, exp)
        return time.perf_counter() - start

    return statistics.median([await run() for _ in range(REPEATS)]) / MEMORY_OPS * 1e6


async def durable_sequential_us(directory: Path) -> float:
    async def run(index: int) -> float:
        store = DurableReplayStore(directory / f"seq{index}.sqlite3")
        exp = time.time() + TTL_S
        await store.claim("warm-up", exp)
        ids = jtis(SEQUENTIAL_OPS)
        start = time.perf_counter()
        for jti in ids:
            await store.claim(jti, exp)
        elapsed = time.perf_counter() - start
        await store.close()
        return elapsed

    return statistics.median([await run(i) for i in range(REPEATS)]) / SEQUENTIAL_OPS * 1e6


async def durable_concurrent(directory: Path) -> tuple[float, float, float]:
    """(µs per claim amortised, p50 latency µs, p99 latency µs) with CONCURRENT in flight."""

    async def timed_claim(
        store: DurableReplayStore, jti: str, exp: float, out: list[float]
    ) -> None:
        start = time.perf_counter()
        await store.claim(jti, exp)
        out.append(time.perf_counter() - start)

    async def run(index: int) -> tuple[float, list[float]]:
        store = DurableReplayStore(directory / f"conc{index}.sqlite3")
        exp = time.time() + TTL_S
        await store.claim("warm-up", exp)
        latencies: list[float] = []
        start = time.perf_counter()
        for _ in range(CONCURRENT_ROUNDS):
            await asyncio.gather(
                *(timed_claim(store, jti, exp, latencies) for jti in jtis(CONCURRENT))
            )
        elapsed = time.perf_counter() - start
        await store.close()
        return elapsed, latencies

    runs = sorted([await run(i) for i in range(REPEATS)], key=lambda r: r[0])
    elapsed, latencies = runs[len(runs) // 2]
    latencies.sort()
    per_claim = elapsed / (CONCURRENT * CONCURRENT_ROUNDS) * 1e6
    p50 = latencies[len(latencies) // 2] * 1e6
    p99 = latencies[int(len(latencies) * 0.99)] * 1e6
    return per_claim, p50, p99


async def main() -> None:
    print(f"Python {platform.python_version()}, {platform.machine()}; medians of {REPEATS} runs")
    verify = verify_us()
    memory = await memory_us()
    var = Path(__file__).resolve().parent.parent / "var"
    var.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(dir=var) as tmp:
        sequential = await durable_sequential_us(Path(tmp))
        per_claim, p50, p99 = await durable_concurrent(Path(tmp))
    rows = [
        ("verify_ticket (HS256 + claims), baseline", verify, ""),
        ("LocalReplayStore.claim (memory, heap)", memory, f"{memory / verify:.2f}x verify"),
        (
            "DurableReplayStore.claim, one at a time",
            sequential,
            f"{sequential / verify:.1f}x verify",
        ),
        (
            f"DurableReplayStore.claim, {CONCURRENT} concurrent (amortised)",
            per_claim,
            f"{per_claim / verify:.2f}x verify",
        ),
        (f"  latency of one claim among {CONCURRENT}, p50", p50, ""),
        (f"  latency of one claim among {CONCURRENT}, p99", p99, ""),
    ]
    width = max(len(name) for name, _, _ in rows)
    print(f"| {'operation':{width}} | µs | vs baseline |")
    print(f"|{'-' * (width + 2)}|---:|---|")
    for name, value, note in rows:
        print(f"| {name:{width}} | {value:9.2f} | {note} |")


if __name__ == "__main__":
    asyncio.run(main())

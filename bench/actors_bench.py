"""Actor runtime benchmark: each figure measured against a bare asyncio.Queue doing the same.

Run:  .venv/bin/python bench/actors_bench.py            (about 30-45 s, prints a Markdown table)
      .venv/bin/python bench/actors_bench.py --repeats 1  (quick look)

Every measurement is repeated and the median reported (the machine is shared and noisy).
The spawn/RSS measurement runs in a fresh subprocess per repeat so that memory freed by an
earlier run cannot hide the growth.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped, unused-ignore]

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from actors import Actor, ActorSystem

TELL_MESSAGES = 200_000
ASK_SEQUENTIAL = 10_000
ASK_CONCURRENT_ASKERS = 1_000
ASK_PER_CONCURRENT_ASKER = 20
SPAWN_ACTORS = 100_000
FANOUT_ACTORS = 10_000
FANOUT_MESSAGES = 100
DEFAULT_REPEATS = 5

# Goals from the spec (issue 3).
GOAL_TELL_RATIO = 0.5
GOAL_BYTES_PER_IDLE_ACTOR = 2048


class Counter(Actor):
    """The measured handler: one attribute update per message, answers asks with the count."""

    def __init__(self) -> None:
        self.count = 0

    async def on_receive(self, msg: Any) -> Any:
        self.count += 1
        return self.count


class Idle(Actor):
    """A typical idle player: a little state set in the constructor."""

    def __init__(self) -> None:
        self.score = 0

    async def on_receive(self, msg: Any) -> Any:
        self.score += 1
        return None


class Fanout(Actor):
    def __init__(self, done: Done) -> None:
        self.done = done

    async def on_receive(self, msg: Any) -> Any:
        self.done.hit()
        return None


class Done:
    """Counts handled messages across actors; sets `event` at the target."""

    __slots__ = ("count", "event", "target")

    def __init__(self, target: int) -> None:
        self.target = target
        self.count = 0
        self.event = asyncio.Event()

    def hit(self) -> None:
        self.count += 1
        if self.count == self.target:
            self.event.set()


class BareHandler:
    count = 0

    async def handle(self, msg: Any) -> int:
        self.count += 1
        return self.count


# -- tell throughput -------------------------------------------------------------------------


async def tell_actor(n: int) -> float:
    async with ActorSystem() as system:
        ref = await system.spawn(Counter, mailbox_size=n)
        start = time.perf_counter()
        for i in range(n):
            ref.tell(i)
        await ref.ask(None)  # in order: answered after every tell was handled
        return n / (time.perf_counter() - start)


async def tell_bare(n: int) -> float:
    queue: asyncio.Queue[Any] = asyncio.Queue()
    handler = BareHandler()

    async def consume() -> None:
        for _ in range(n):
            await handler.handle(await queue.get())

    start = time.perf_counter()
    consumer = asyncio.ensure_future(consume())  # owned: awaited below
    for i in range(n):
        queue.put_nowait(i)
    await consumer
    return n / (time.perf_counter() - start)


async def send_actor(n: int) -> float:
    """Bounded variant: default 1024 mailbox, producer awaits `send` (backpressure)."""
    async with ActorSystem() as system:
        ref = await system.spawn(Counter)
        start = time.perf_counter()
        for i in range(n):
            await ref.send(i)
        await ref.ask(None)
        return n / (time.perf_counter() - start)


async def send_bare(n: int) -> float:
    queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=1024)
    handler = BareHandler()

    async def consume() -> None:
        for _ in range(n):
            await handler.handle(await queue.get())

    start = time.perf_counter()
    consumer = asyncio.ensure_future(consume())  # owned: awaited below
    for i in range(n):
        await queue.put(i)
    await consumer
    return n / (time.perf_counter() - start)


# -- ask latency -----------------------------------------------------------------------------


def percentiles(samples: list[float]) -> tuple[float, float]:
    samples.sort()
    p50 = samples[len(samples) // 2]
    p99 = samples[min(len(samples) - 1, int(len(samples) * 0.99))]
    return p50 * 1e6, p99 * 1e6  # microseconds


async def _ask_load(
    ask: Callable[[int], Awaitable[Any]], askers: int, per_asker: int
) -> tuple[float, float]:
    samples: list[float] = []
    clock = time.perf_counter

    async def asker() -> None:
        for i in range(per_asker):
            t0 = clock()
            await ask(i)
            samples.append(clock() - t0)

    async with asyncio.TaskGroup() as group:
        for _ in range(askers):
            group.create_task(asker())
    return percentiles(samples)


async def ask_actor(askers: int, per_asker: int) -> tuple[float, float]:
    async with ActorSystem() as system:
        ref = await system.spawn(Counter, mailbox_size=max(1024, askers))
        return await _ask_load(ref.ask, askers, per_asker)


async def ask_bare(askers: int, per_asker: int) -> tuple[float, float]:
    """Request/response over a bare queue: the request carries a future for the answer."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[Any, asyncio.Future[Any]]] = asyncio.Queue()
    handler = BareHandler()

    async def serve() -> None:
        while True:
            msg, fut = await queue.get()
            result = await handler.handle(msg)
            if not fut.done():
                fut.set_result(result)

    async def ask(msg: Any) -> Any:
        fut = loop.create_future()
        queue.put_nowait((msg, fut))
        return await fut

    server = asyncio.ensure_future(serve())  # owned: cancelled below
    try:
        return await _ask_load(ask, askers, per_asker)
    finally:
        server.cancel()
        await asyncio.gather(server, return_exceptions=True)


# -- spawn + idle memory (fresh subprocess per repeat) ---------------------------------------


def _rss() -> int:
    gc.collect()
    return int(psutil.Process(os.getpid()).memory_info().rss)


async def spawn_child(kind: str, n: int) -> dict[str, float]:
    if kind == "actor":
        system = ActorSystem()
        await system.start()
        keep: list[Any] = []
        before = _rss()
        start = time.perf_counter()
        for _ in range(n):
            keep.append(await system.spawn(Idle))
        elapsed = time.perf_counter() - start
        after = _rss()
        await system.shutdown()
    else:
        # Bare equivalent of an idle mailbox: one asyncio.Queue per entity, in a dict by id.
        registry: dict[str, asyncio.Queue[Any]] = {}
        before = _rss()
        start = time.perf_counter()
        for i in range(n):
            registry[f"q-{i:x}"] = asyncio.Queue(maxsize=1024)
        elapsed = time.perf_counter() - start
        after = _rss()
    return {"seconds": elapsed, "bytes_per": (after - before) / n}


def spawn_in_subprocess(kind: str, n: int) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, "--spawn-child", kind, "--n", str(n)],
        check=True,
        capture_output=True,
        text=True,
    )
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


# -- 10k actors x 100 messages -------------------------------------------------------------


async def fanout_actor(actors: int, messages: int) -> float:
    async with ActorSystem() as system:
        done = Done(actors * messages)
        refs = [await system.spawn(Fanout, done) for _ in range(actors)]
        start = time.perf_counter()
        for i in range(messages):
            for ref in refs:
                ref.tell(i)
        await done.event.wait()
        return actors * messages / (time.perf_counter() - start)


async def fanout_bare(actors: int, messages: int) -> float:
    done = Done(actors * messages)
    queues: list[asyncio.Queue[Any]] = [asyncio.Queue(maxsize=1024) for _ in range(actors)]

    async def consume(queue: asyncio.Queue[Any]) -> None:
        while True:
            await queue.get()
            done.hit()

    consumers = [asyncio.ensure_future(consume(q)) for q in queues]  # owned: cancelled below
    try:
        start = time.perf_counter()
        for i in range(messages):
            for queue in queues:
                queue.put_nowait(i)
        await done.event.wait()
        return actors * messages / (time.perf_counter() - start)
    finally:
        for task in consumers:
            task.cancel()
        await asyncio.gather(*consumers, return_exceptions=True)


# -- driver ----------------------------------------------------------------------------------


def median_of(runs: list[Any]) -> Any:
    if isinstance(runs[0], tuple):
        return tuple(statistics.median(r[i] for r in runs) for i in range(len(runs[0])))
    return statistics.median(runs)


async def measure(repeats: int) -> list[tuple[str, str, str, str, str]]:
    rows: list[tuple[str, str, str, str, str]] = []
    results: dict[str, list[Any]] = {}

    def add(key: str, value: Any) -> None:
        results.setdefault(key, []).append(value)

    for _ in range(repeats):
        # Interleave actor and bare runs so that machine noise hits both alike.
        add("tell_bare", await tell_bare(TELL_MESSAGES))
        add("tell_actor", await tell_actor(TELL_MESSAGES))
        add("send_bare", await send_bare(TELL_MESSAGES))
        add("send_actor", await send_actor(TELL_MESSAGES))
        add("ask1_bare", await ask_bare(1, ASK_SEQUENTIAL))
        add("ask1_actor", await ask_actor(1, ASK_SEQUENTIAL))
        add("askN_bare", await ask_bare(ASK_CONCURRENT_ASKERS, ASK_PER_CONCURRENT_ASKER))
        add("askN_actor", await ask_actor(ASK_CONCURRENT_ASKERS, ASK_PER_CONCURRENT_ASKER))
        add("fan_bare", await fanout_bare(FANOUT_ACTORS, FANOUT_MESSAGES))
        add("fan_actor", await fanout_actor(FANOUT_ACTORS, FANOUT_MESSAGES))
        add("spawn_bare", spawn_in_subprocess("bare", SPAWN_ACTORS))
        add("spawn_actor", spawn_in_subprocess("actor", SPAWN_ACTORS))
        gc.collect()

    m = {key: median_of(values) for key, values in results.items() if "spawn" not in key}

    def rate(x: float) -> str:
        return f"{x / 1e3:,.0f} k msg/s"

    tell_ratio = m["tell_actor"] / m["tell_bare"]
    rows.append(
        (
            f"tell throughput, 1 actor, {TELL_MESSAGES:,} msgs",
            rate(m["tell_actor"]),
            rate(m["tell_bare"]),
            f"ratio {tell_ratio:.2f} (goal >= {GOAL_TELL_RATIO})",
            "met" if tell_ratio >= GOAL_TELL_RATIO else "MISSED",
        )
    )
    send_ratio = m["send_actor"] / m["send_bare"]
    rows.append(
        (
            "await send throughput, 1 actor, mailbox 1024",
            rate(m["send_actor"]),
            rate(m["send_bare"]),
            f"ratio {send_ratio:.2f}",
            "-",
        )
    )
    for key, label in (("ask1", "1 asker"), ("askN", f"{ASK_CONCURRENT_ASKERS:,} askers")):
        a50, a99 = m[f"{key}_actor"]
        b50, b99 = m[f"{key}_bare"]
        rows.append(
            (
                f"ask round trip, {label}, p50 / p99",
                f"{a50:,.0f} / {a99:,.0f} us",
                f"{b50:,.0f} / {b99:,.0f} us",
                f"p50 ratio {a50 / b50:.2f}",
                "-",
            )
        )
    a_secs = statistics.median(r["seconds"] for r in results["spawn_actor"])
    b_secs = statistics.median(r["seconds"] for r in results["spawn_bare"])
    a_bytes = statistics.median(r["bytes_per"] for r in results["spawn_actor"])
    b_bytes = statistics.median(r["bytes_per"] for r in results["spawn_bare"])
    rows.append(
        (
            f"spawn {SPAWN_ACTORS:,} actors (time)",
            f"{a_secs:.2f} s ({SPAWN_ACTORS / a_secs / 1e3:,.0f} k/s)",
            f"{b_secs:.2f} s (Queue objects)",
            "-",
            "-",
        )
    )
    rows.append(
        (
            "RSS growth per idle actor",
            f"{a_bytes:,.0f} B",
            f"{b_bytes:,.0f} B (one asyncio.Queue)",
            f"goal < {GOAL_BYTES_PER_IDLE_ACTOR:,} B",
            "met" if a_bytes < GOAL_BYTES_PER_IDLE_ACTOR else "MISSED",
        )
    )
    rows.append(
        (
            f"{FANOUT_ACTORS:,} actors x {FANOUT_MESSAGES} msgs, total",
            rate(m["fan_actor"]),
            rate(m["fan_bare"]),
            f"ratio {m['fan_actor'] / m['fan_bare']:.2f}",
            "-",
        )
    )
    return rows


def print_table(rows: list[tuple[str, str, str, str, str]], repeats: int) -> None:
    header = ("benchmark", "actors", "bare asyncio.Queue", "comparison / goal", "goal")
    print(f"\nActor runtime benchmark (median of {repeats}; Python {sys.version.split()[0]})\n")
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(5)]
    line = "| " + " | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)) + " |"
    print(line)
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in rows:
        print("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=DEFAULT_REPEATS)
    parser.add_argument("--spawn-child", choices=["actor", "bare"], help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, default=SPAWN_ACTORS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.spawn_child:
        print(json.dumps(asyncio.run(spawn_child(args.spawn_child, args.n))))
        return
    started = time.perf_counter()
    rows = asyncio.run(measure(args.repeats))
    print_table(rows, args.repeats)
    print(f"\n(total {time.perf_counter() - started:.1f} s)")


if __name__ == "__main__":
    main()

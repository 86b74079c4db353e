"""Two-level sessions: the message path's cost, L2 batch throughput, and the loss window.

Run: ``.venv/bin/python bench/sessions_bench.py`` (about a minute; needs redis-server and
redis-cli for the Redis Cluster it starts itself, and the Redis at ``GAME_TEST_REDIS_URL``,
default ``redis://127.0.0.1:6379/15``). Figures are medians of REPEATS runs.

1. Message path: ``Session.emit`` with the store's mark vs with no store (baseline, same
   run): the store must add no I/O and next to no CPU per message.
2. L2 batch throughput: one batch of N changed sessions (each with one new message and an
   outbox of OUTBOX messages) written to SQLite, a single Redis, and a 3-master Redis
   Cluster: median batch time and records/s.
3. Loss window: messages emitted at random for LOSS_RUN_S with the real writer task
   (``GAME_SESSION_FLUSH_MS`` 20): per message, the time from emit until a batch holding it
   was written. A ``kill -9`` at any instant loses exactly the messages younger than that;
   its p50/p99/max is the window docs/PROTOCOL.md states.
"""

from __future__ import annotations

import asyncio
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import gameproto as p
from gamebackend.gateway.session import Session
from gamebackend.gateway.sessionstore import SessionStore, WriteBatch
from gamebackend.gateway.sessionstore.redis_l2 import RedisL2, redis_client
from gamebackend.gateway.sessionstore.sqlite_l2 import SqliteL2
from tests.redis_cluster import running_redis_cluster

REPEATS = 5
EMIT_SESSIONS = 2_000
EMITS_PER_SESSION = 100
BATCH_SIZES = (64, 512, 2_000)
OUTBOX = 8
FLUSH_S = 0.020
LOSS_SESSIONS = 2_000
LOSS_RUN_S = 3.0
LOSS_RATE_PER_S = 5_000
REDIS_URL = os.environ.get("GAME_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


async def _overflow(session: Session) -> None:
    raise AssertionError("the bench never overflows")


def state(i: int) -> p.State:
    return p.State(seq=0, player_id="bench-player", x=float(i), y=1.0, rev=i)


def sessions(store: SessionStore | None, count: int, outbox_max: int = 4096) -> list[Session]:
    out = []
    for i in range(count):
        s = Session(
            player_id=f"bench{i}-{os.getpid()}", outbox_max=outbox_max, on_overflow=_overflow
        )
        if store is not None:
            s.changed = store.changed
        if store is not None:
            store.started(s)
        out.append(s)
    return out


async def message_path(store: SessionStore | None) -> float:
    """ns per emit (no connection bound: the outbox and, with a store, the mark)."""
    group = sessions(store, EMIT_SESSIONS)
    msgs = [state(i) for i in range(EMITS_PER_SESSION)]
    started = time.perf_counter_ns()
    for msg_i in range(EMITS_PER_SESSION):
        for s in group:
            await s.emit(msgs[msg_i])
    return (time.perf_counter_ns() - started) / (EMIT_SESSIONS * EMITS_PER_SESSION)


class TimedL2:
    """Delegates to an L2 and notes when each batch was taken and when it was written."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.writes: list[tuple[float, float]] = []

    async def write(self, batch: WriteBatch) -> None:
        taken = time.monotonic()
        await self.inner.write(batch)
        self.writes.append((taken, time.monotonic()))

    async def load(self, session_id: str, player_id: str) -> tuple[bytes | None, str | None]:
        result: tuple[bytes | None, str | None] = await self.inner.load(session_id, player_id)
        return result

    async def close(self) -> None:
        await self.inner.close()


def new_store(l2: Any) -> SessionStore:
    return SessionStore(l2, node_id="bench", l1_size=10_000, l1_ttl_s=30.0, flush_s=FLUSH_S)


async def batch_throughput(make_l2: Any, size: int) -> tuple[float, float]:
    """Median (ms per batch, records/s) of a batch of ``size`` changed sessions."""
    store = new_store(make_l2())
    group = sessions(store, size)
    for s in group:
        for i in range(OUTBOX - 1):
            await s.emit(state(i))
    await store.flush()  # first write (the frames get encoded once)
    times = []
    for r in range(REPEATS):
        for s in group:
            await s.emit(state(r))
            s.ack(s.outbox.last_seq - OUTBOX)  # keep OUTBOX un-acked messages
        started = time.perf_counter()
        await store.flush()
        times.append(time.perf_counter() - started)
    await store.close()
    median = statistics.median(times)
    return median * 1000, size / median


async def loss_window(make_l2: Any) -> dict[str, float]:
    timed = TimedL2(make_l2())
    store = new_store(timed)
    group = sessions(store, LOSS_SESSIONS)
    await store.flush()
    timed.writes.clear()
    store.start()
    rng = random.Random(1)
    emitted: list[float] = []
    deadline = time.monotonic() + LOSS_RUN_S
    interval = 1 / LOSS_RATE_PER_S
    while time.monotonic() < deadline:
        for _ in range(10):
            s = rng.choice(group)
            emitted.append(time.monotonic())
            await s.emit(state(len(emitted)))
            s.ack(s.outbox.last_seq)  # an attentive client: the outbox stays short
        await asyncio.sleep(interval * 10)
    await asyncio.sleep(FLUSH_S * 3)
    await store.close()
    writes = sorted(timed.writes)
    lags = []
    j = 0
    for t in emitted:
        while j < len(writes) and writes[j][0] < t:
            j += 1
        if j < len(writes):
            lags.append(writes[j][1] - t)
    lags.sort()
    return {
        "p50": lags[len(lags) // 2] * 1000,
        "p99": lags[int(len(lags) * 0.99)] * 1000,
        "max": lags[-1] * 1000,
        "batches": len(writes),
        "messages": len(lags),
    }


async def main() -> None:
    print(f"python {platform.python_version()}, {platform.machine()}, {os.cpu_count()} cpus")
    sink = new_store(SqliteL2(Path(tempfile.mkdtemp()) / "s.sqlite3", ttl_s=1800))
    await message_path(None)  # warm-up
    bases, marks = [], []
    for _ in range(REPEATS):  # alternating runs
        bases.append(await message_path(None))
        marks.append(await message_path(sink))
        sink._dirty.clear()
    base, marked = statistics.median(bases), statistics.median(marks)
    await sink.close()
    print("\n1. message path (Session.emit, no socket)")
    print(f"   no store {base:.0f} ns/msg, with the store's mark {marked:.0f} ns/msg"
          f" ({marked / base:.2f}x); L2 round trips on the path: 0")  # fmt: skip

    tmp = Path(tempfile.mkdtemp(prefix="sessions-bench-", dir=Path("var").resolve()))
    with running_redis_cluster() as cluster_url:
        clients: list[Any] = []

        def redis_l2(url: str, cluster: bool) -> Any:
            def make() -> Any:
                client = redis_client(url, cluster=cluster)
                clients.append(client)
                return RedisL2(client, ttl_s=1800)

            return make

        backends = {
            "sqlite (GAME_VAR_DIR)": lambda: SqliteL2(tmp / f"{time.time_ns()}.db", ttl_s=1800),
            "redis (single)": redis_l2(REDIS_URL, False),
            "redis cluster (3 masters)": redis_l2(cluster_url, True),
        }
        print(f"\n2. L2 batch throughput (each record: {OUTBOX} un-acked messages)")
        print("   backend                     batch   ms/batch   records/s")
        for name, make in backends.items():
            for size in BATCH_SIZES:
                ms, rate = await batch_throughput(make, size)
                print(f"   {name:27s} {size:5d} {ms:10.2f} {rate:11.0f}")
        print(f"\n3. loss window (writer every {FLUSH_S * 1000:.0f} ms, {LOSS_RATE_PER_S}"
              f" msgs/s over {LOSS_SESSIONS} sessions): emit -> in L2, ms")  # fmt: skip
        for name, make in backends.items():
            r = await loss_window(make)
            print(f"   {name:27s} p50 {r['p50']:6.1f}  p99 {r['p99']:6.1f}  max {r['max']:6.1f}"
                  f"  ({r['messages']:.0f} msgs, {r['batches']:.0f} batches)")  # fmt: skip
        for client in clients:
            await client.aclose()


if __name__ == "__main__":
    asyncio.run(main())

"""Anti-replay stores for connect tickets: each `jti` is claimed once, remembered until `exp`.

- `LocalReplayStore`: process memory, pruned in expiry order (a heap).
- `DurableReplayStore`: the single-machine profile's store: memory answers, and every
  claim is journaled to SQLite (under ``GAME_VAR_DIR``) before it counts, so a node that
  restarts (or crashes) still refuses the tickets it already accepted.
- `RedisReplayStore`: the cluster profile's store, shared by every node.

No Django imports; the runtime picks the store and passes paths and clients in.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
import math
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Final

from gamebackend.gateway.tickets import ReplayStore, TicketRejected

if TYPE_CHECKING:
    import redis.asyncio

__all__ = [
    "DEFAULT_LOCAL_STORE_MAX",
    "DurableReplayStore",
    "LocalReplayStore",
    "RedisReplayStore",
    "ReplayStore",
    "ReplayStoreFull",
    "ReplayStoreUnavailable",
]

logger = logging.getLogger(__name__)

# Local store capacity: tickets live at most GAME_TICKET_TTL_S (30 s), so this allows
# ~30k connects/s per process before failing closed.
DEFAULT_LOCAL_STORE_MAX: Final = 1_000_000
REDIS_KEY_PREFIX: Final = "game:ticket:jti:"
# Expired rows are deleted from the journal at most this often (by the writer thread).
JOURNAL_PRUNE_INTERVAL_S: Final = 10.0
# The journal waits this long for a lock (another process opening the same var dir).
JOURNAL_BUSY_TIMEOUT_S: Final = 5.0


class ReplayStoreFull(TicketRejected):
    """The local replay store is at capacity; fail closed rather than forget a live jti."""

    def __init__(self) -> None:
        super().__init__("replay_store_full")


class ReplayStoreUnavailable(TicketRejected):
    """The journal could not record the claim; fail closed (the ticket could be replayed)."""

    def __init__(self) -> None:
        super().__init__("replay_store_unavailable")


class LocalReplayStore:
    """In-process jti memory, pruned by expiry order.

    A dict answers "seen?"; a heap of ``(exp, jti)`` gives the next entry to expire, so one
    ticket with a far-away `exp` never holds back the pruning of the others (O(log n)
    per claim).
    """

    def __init__(
        self, *, max_entries: int = DEFAULT_LOCAL_STORE_MAX, clock: Callable[[], float] = time.time
    ) -> None:
        self._seen: dict[str, float] = {}
        self._expiries: list[tuple[float, str]] = []
        self._max_entries = max_entries
        self._clock = clock

    def __len__(self) -> int:
        return len(self._seen)

    def _prune(self, now: float) -> None:
        heap, seen = self._expiries, self._seen
        while heap and heap[0][0] <= now:
            _exp, jti = heapq.heappop(heap)
            del seen[jti]

    def remember(self, jti: str, exp: float) -> bool:
        """The synchronous claim: True the first time `jti` is seen (until it expires)."""
        self._prune(self._clock())
        if jti in self._seen:
            return False
        if len(self._seen) >= self._max_entries:
            raise ReplayStoreFull()
        self._seen[jti] = exp
        heapq.heappush(self._expiries, (exp, jti))
        return True

    async def claim(self, jti: str, exp: float) -> bool:
        return self.remember(jti, exp)

    async def close(self) -> None:
        return None


class DurableReplayStore:
    """A `LocalReplayStore` whose claims are journaled in SQLite and reloaded at start.

    Memory answers every duplicate this process has seen without I/O. A first claim is
    appended to a batch that one
    writer thread commits (group commit: while one batch is written the next gathers), and
    `claim` returns True only after its batch is committed, so an accepted ticket is on
    disk before the player is let in, even if the process is killed right after; a jti the
    file already holds (another process sharing the var dir took it) is refused. SQLite
    runs in WAL mode with ``synchronous=NORMAL``: commits survive a process crash, not a
    power cut.

    `start()` (on the serving loop) loads the unexpired jtis in the writer thread; claims
    wait for it. `close()` writes what is pending and closes the file.
    """

    def __init__(
        self,
        path: Path,
        *,
        max_entries: int = DEFAULT_LOCAL_STORE_MAX,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = path
        self._clock = clock
        self._memory = LocalReplayStore(max_entries=max_entries, clock=clock)
        # One thread owns the sqlite3 connection (connections are bound to their thread).
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ticket-journal")
        self._conn: sqlite3.Connection | None = None
        self._last_prune = 0.0
        self._pending: list[tuple[str, float, asyncio.Future[bool]]] = []
        self._wakeup = asyncio.Event()
        self._ready = asyncio.Event()
        self._failed = False
        self._closing = False
        self._task: asyncio.Task[None] | None = None

    def __len__(self) -> int:
        return len(self._memory)

    def start(self) -> None:
        """Load the journal and start the writer (a task owned by this store)."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(  # owned by DurableReplayStore
                self._run(), name="ticket-journal"
            )

    async def claim(self, jti: str, exp: float) -> bool:
        if not self._ready.is_set():
            self.start()
            await self._ready.wait()
        if self._failed or self._closing:
            raise ReplayStoreUnavailable()
        if not self._memory.remember(jti, exp):
            return False
        done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._pending.append((jti, exp, done))
        self._wakeup.set()
        # Shielded: a caller that goes away still gets its jti written by the batch. False
        # when the journal already had it: another process on this var dir took it.
        return await asyncio.shield(done)

    async def close(self) -> None:
        """Commit what is pending, stop the writer and close the file."""
        self._closing = True
        self._wakeup.set()
        task, self._task = self._task, None
        if task is not None:
            await asyncio.gather(task, return_exceptions=True)
        loop = asyncio.get_running_loop()
        with contextlib.suppress(RuntimeError):  # executor already shut down
            await loop.run_in_executor(self._executor, self._close_file)
        self._executor.shutdown(wait=False)

    # -- the writer (event loop side) ----------------------------------------------------

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            rows = await loop.run_in_executor(self._executor, self._open_and_load, self._clock())
        except Exception:
            logger.exception("ticket journal %s unusable: refusing every ticket", self.path)
            self._failed = True
            self._ready.set()
            return
        for jti, exp in rows:
            self._memory.remember(jti, exp)
        if rows:
            logger.info("ticket journal: %d used tickets remembered from before", len(rows))
        self._ready.set()
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            batch, self._pending = self._pending, []
            if batch:
                await self._commit(loop, batch)
            if self._closing and not self._pending:
                return

    async def _commit(
        self, loop: asyncio.AbstractEventLoop, batch: list[tuple[str, float, asyncio.Future[bool]]]
    ) -> None:
        rows = [(jti, exp) for jti, exp, _ in batch]
        try:
            firsts = await loop.run_in_executor(self._executor, self._write, rows, self._clock())
        except Exception:
            logger.exception("ticket journal write failed: refusing %d tickets", len(rows))
            for _, _, done in batch:
                if not done.done():
                    done.set_exception(ReplayStoreUnavailable())
            return
        for (_, _, done), first in zip(batch, firsts, strict=True):
            if not done.done():
                done.set_result(first)

    # -- the writer thread ---------------------------------------------------------------

    def _open_and_load(self, now: float) -> list[tuple[str, float]]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, timeout=JOURNAL_BUSY_TIMEOUT_S, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute(
            "CREATE TABLE IF NOT EXISTS used_jti (jti TEXT PRIMARY KEY, exp REAL NOT NULL)"
            " WITHOUT ROWID"
        )
        conn.execute("CREATE INDEX IF NOT EXISTS used_jti_exp ON used_jti (exp)")
        conn.execute("DELETE FROM used_jti WHERE exp <= ?", (now,))
        self._conn = conn
        self._last_prune = now
        return [(str(j), float(e)) for j, e in conn.execute("SELECT jti, exp FROM used_jti")]

    def _write(self, rows: list[tuple[str, float]], now: float) -> list[bool]:
        """Insert the batch in one transaction; per row, whether it was new to the file."""
        conn = self._conn
        assert conn is not None  # opened by _open_and_load before the first write
        insert = "INSERT OR IGNORE INTO used_jti (jti, exp) VALUES (?, ?)"
        with conn:
            conn.execute("BEGIN IMMEDIATE")
            if now - self._last_prune >= JOURNAL_PRUNE_INTERVAL_S:
                conn.execute("DELETE FROM used_jti WHERE exp <= ?", (now,))
                self._last_prune = now
            return [conn.execute(insert, row).rowcount == 1 for row in rows]

    def _close_file(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()


class RedisReplayStore:
    """Cluster-wide jti memory: `SET key 1 NX EXAT exp` succeeds once per jti."""

    def __init__(self, client: redis.asyncio.Redis, *, prefix: str = REDIS_KEY_PREFIX) -> None:
        self._client = client
        self._prefix = prefix

    async def claim(self, jti: str, exp: float) -> bool:
        # EXAT takes whole seconds; round up so the key lives at least as long as the ticket.
        stored = await self._client.set(self._prefix + jti, 1, nx=True, exat=math.ceil(exp))
        return bool(stored)

    async def close(self) -> None:
        return None  # the client belongs to the runtime

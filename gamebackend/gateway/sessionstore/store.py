"""The node's session store: L1 (a bounded per-node LRU with TTL) in front of L2.

- L2 is shared and survives the node: Redis in the cluster profile (``redis_l2``), a
  SQLite file under ``GAME_VAR_DIR`` on a single machine (``sqlite_l2``). It keeps each
  session's record (player, last seq, last acked seq) and its un-acknowledged outbox.
- The hub owns the live sessions of its node; the message path only marks a session dirty
  (a dict store, no I/O). One writer task, owned by this store, writes every dirty session
  to L2 in one batch every ``flush_s`` (``GAME_SESSION_FLUSH_MS``): that interval plus the
  batch's write time is what a ``kill -9`` of the node can lose (docs/PROTOCOL.md).
- L1 (``cachetools.TTLCache``) caches the records this node wrote or read, so resumes that
  reach this node again (a flapping connection, a failover back) skip the L2 read. When a
  session moves to another node, that node publishes an invalidation (``invalidation``)
  and every other node drops its L1 copy (and any live copy, closing it with 4409).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from cachetools import TTLCache

from gamebackend.gateway.sessionstore.record import (
    SessionRecord,
    decode_record,
    encode_message,
    encode_record,
)

if TYPE_CHECKING:
    from gamebackend.gateway.session import Session

logger = logging.getLogger(__name__)

# How long a node that took a session over waits for the previous node's final (sealed)
# record to reach L2; the previous node writes it at once, so this only bounds a slow one.
SEAL_WAIT_S = 1.0
# A failed L2 write is retried by the next batch; failures are logged at most this often.
WRITE_FAILURE_LOG_INTERVAL_S = 5.0
# An L2 that does not answer (a paused Redis) fails a batch after this long (retried), so
# the writer and a shutdown never hang on it.
WRITE_TIMEOUT_S = 5.0
# A resume waits at most this long for an L2 read (then it starts a new session).
READ_TIMEOUT_S = 2.0
# Publishing an invalidation is advisory (the handoff covers live copies): bounded.
PUBLISH_TIMEOUT_S = 0.5


@dataclass
class WriteBatch:
    """One L2 write: records to store, sessions to delete, players' current sessions."""

    puts: list[tuple[str, str, bytes]] = field(default_factory=list)  # (sid, player, record)
    deletes: list[str] = field(default_factory=list)
    currents: list[tuple[str, str]] = field(default_factory=list)  # (player, sid)

    def __len__(self) -> int:
        return len(self.puts) + len(self.deletes) + len(self.currents)


class L2(Protocol):
    async def write(self, batch: WriteBatch) -> None:
        """Apply the batch (one round trip / one transaction); raises on failure."""
        ...

    async def load(self, session_id: str, player_id: str) -> tuple[bytes | None, str | None]:
        """The session's record and the player's current session id (either may be None)."""
        ...

    async def close(self) -> None: ...


class Invalidator(Protocol):
    async def publish(self, session_id: str) -> None: ...


@dataclass
class StoreStats:
    batches: int = 0
    records: int = 0
    write_failures: int = 0
    l1_hits: int = 0
    l2_reads: int = 0
    last_batch_s: float = 0.0
    batch_seconds: list[float] = field(default_factory=list)


# Recent batch durations kept for the figures (docs/BENCHMARKS.md).
BATCH_TIMES_KEPT = 1024


class SessionStore:
    def __init__(
        self,
        l2: L2,
        *,
        node_id: str,
        l1_size: int,
        l1_ttl_s: float,
        flush_s: float,
        invalidator: Invalidator | None = None,
    ) -> None:
        self.l2 = l2
        self.node_id = node_id
        self.flush_s = flush_s
        self.l1: TTLCache[str, SessionRecord] = TTLCache(maxsize=l1_size, ttl=l1_ttl_s)
        self.invalidator = invalidator
        self.stats = StoreStats()
        self._dirty: dict[str, Session] = {}
        self._deletes: set[str] = set()
        self._currents: dict[str, str] = {}
        # Deletes sent in the batch being written: still gone for load() until it lands.
        self._deleting: set[str] = set()
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._last_failure_log = 0.0

    # -- the message path: memory only --------------------------------------------------

    def changed(self, session: Session) -> None:
        """The session numbered a message or took an ack: write it with the next batch."""
        self._dirty[session.session_id] = session

    def started(self, session: Session) -> None:
        """A new session: it is now the player's current one (older ones stop resuming)."""
        self._currents[session.player_id] = session.session_id
        self._deletes.discard(session.session_id)
        self._dirty[session.session_id] = session

    def ended(self, session: Session) -> None:
        """The session ended (client close, grace expired, replaced, overflow): not resumable."""
        sid = session.session_id
        self._dirty.pop(sid, None)
        self.l1.pop(sid, None)
        self._deletes.add(sid)

    def sealed(self, session: Session) -> None:
        """The session moved to another node: write its final record now (that node waits)."""
        session.sealed = True
        self._dirty[session.session_id] = session
        self.l1.pop(session.session_id, None)
        self._wakeup.set()

    def invalidate(self, session_id: str) -> None:
        """Another node took ``session_id`` over: forget this node's copy."""
        self.l1.pop(session_id, None)
        self._dirty.pop(session_id, None)

    # -- reads (resume only) ------------------------------------------------------------

    async def load(
        self, session_id: str, player_id: str, *, after_handoff: bool = False
    ) -> SessionRecord | None:
        """The resumable record of ``session_id`` for ``player_id``, or None.

        ``after_handoff``: another node just handed the player over and writes the
        session's final (sealed) record now; wait for it (bounded by SEAL_WAIT_S).
        """
        if session_id in self._deletes or session_id in self._deleting:
            return None
        if not after_handoff:
            cached = self.l1.get(session_id)
            if cached is not None and not cached.sealed and cached.player_id == player_id:
                self.stats.l1_hits += 1
                return cached
        deadline = time.monotonic() + SEAL_WAIT_S
        while True:
            self.stats.l2_reads += 1
            async with asyncio.timeout(READ_TIMEOUT_S):
                raw, current = await self.l2.load(session_id, player_id)
            record = decode_record(raw) if raw is not None else None
            if current is not None and current != session_id:
                return None  # a newer session of the player replaced this one
            if not after_handoff or (record is not None and record.sealed):
                break
            if time.monotonic() >= deadline:
                logger.info("session %s: no sealed record from the previous node", session_id)
                break
            # Polling an external effect (the other node's write) with a deadline.
            await asyncio.sleep(self.flush_s)
        if record is None or record.player_id != player_id:
            return None
        self.l1[session_id] = record
        return record

    async def adopted(self, session: Session) -> None:
        """This node resumed ``session`` from L2: it is the owner now; tell the others."""
        session.sealed = False
        self._dirty[session.session_id] = session
        if self.invalidator is not None:
            try:
                async with asyncio.timeout(PUBLISH_TIMEOUT_S):
                    await self.invalidator.publish(session.session_id)
            except Exception as exc:  # the handoff already moved the player; advisory
                logger.warning("session %s: invalidation not published: %r", session, exc)

    # -- the writer ---------------------------------------------------------------------

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(  # owned by SessionStore
                self._run(), name="session-store-writer"
            )

    async def close(self) -> None:
        """Write what is pending (graceful shutdown keeps sessions resumable), then stop."""
        self._closing = True
        self._wakeup.set()
        task, self._task = self._task, None
        if task is not None:
            await asyncio.gather(task, return_exceptions=True)
        with contextlib.suppress(Exception):
            await self.flush()
        await self.l2.close()

    async def _run(self) -> None:
        while not self._closing:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.flush_s):
                    await self._wakeup.wait()
            self._wakeup.clear()
            try:
                await self.flush()
            except Exception as exc:
                self.stats.write_failures += 1
                now = time.monotonic()
                if now - self._last_failure_log >= WRITE_FAILURE_LOG_INTERVAL_S:
                    self._last_failure_log = now
                    logger.warning("session store: L2 write failed (retried): %r", exc)

    def _batch(self) -> tuple[WriteBatch, dict[str, Session], dict[str, SessionRecord]]:
        dirty, self._dirty = self._dirty, {}
        deletes, self._deletes = self._deletes, set()
        currents, self._currents = self._currents, {}
        batch = WriteBatch(deletes=list(deletes), currents=list(currents.items()))
        records: dict[str, SessionRecord] = {}
        for sid, session in dirty.items():
            if session.ended and not session.sealed:
                continue
            record = self._record(session)
            records[sid] = record
            batch.puts.append((sid, session.player_id, encode_record(record)))
        return batch, dirty, records

    def _record(self, session: Session) -> SessionRecord:
        outbox = session.outbox
        cache = session.stored_frames
        acked = outbox.acked_seq
        # Frames are encoded once per message (not once per batch): drop the acked ones,
        # encode the new ones.
        while cache and cache[0][0] <= acked:
            cache.popleft()
        after = cache[-1][0] if cache else acked
        for msg in outbox.items_after(after):
            cache.append((msg.seq, encode_message(msg)))
        return SessionRecord(
            session_id=session.session_id,
            player_id=session.player_id,
            last_seq=outbox.last_seq,
            acked_seq=acked,
            items=[frame for _, frame in cache],
            sealed=session.sealed,
            node=self.node_id,
        )

    async def flush(self) -> int:
        """Write every pending change to L2 in one batch; returns the number of operations."""
        batch, dirty, records = self._batch()
        if not batch:
            return 0
        self._deleting = set(batch.deletes)
        started = time.perf_counter()
        try:
            async with asyncio.timeout(WRITE_TIMEOUT_S):
                await self.l2.write(batch)
        except BaseException:
            # Put the batch back (newer changes made meanwhile win) for the next attempt.
            for sid, session in dirty.items():
                self._dirty.setdefault(sid, session)
            self._deletes |= set(batch.deletes) - set(self._dirty)
            for player, sid in batch.currents:
                self._currents.setdefault(player, sid)
            raise
        finally:
            self._deleting = set()
        elapsed = time.perf_counter() - started
        stats = self.stats
        stats.batches += 1
        stats.records += len(batch.puts)
        stats.last_batch_s = elapsed
        times = stats.batch_seconds
        times.append(elapsed)
        if len(times) > BATCH_TIMES_KEPT:
            del times[: len(times) - BATCH_TIMES_KEPT]
        for sid, record in records.items():
            if record.sealed:
                self.l1.pop(sid, None)
            elif sid not in self._deletes:
                self.l1[sid] = record
        return len(batch)

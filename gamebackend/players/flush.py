"""The node's flush buffer: dirty player versions to the database in batches, never lost.

Actors hand every new version to ``FlushBuffer.add`` (memory only: a dict store, so the
newest version per player replaces an unsent older one). One task owned by the buffer
sends a batch when ``batch`` players are dirty or ``window_s`` after the first dirty one:
it journals the batch (``FlushJournal``, on disk) and enqueues it as one Celery task,
both in a thread and through the ``celery.enqueue`` breaker. A second task confirms sent
batches by reading their LSNs back from the database, deletes confirmed ones from the
journal, and sends again those not confirmed within ``redeliver_s`` (a worker killed mid
batch, a lost message). At start the batches left in the journal are sent again.

While the broker or the database is down the buffer holds: unsent versions coalesce per
player, at most ``inflight_max`` entities wait for confirmation, and ``over_bound`` tells
the gateway to refuse new players (close 1013) once ``max_entities`` are held.
See docs/DURABILITY.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from gamebackend.players.journal import FlushJournal
from gamebackend.players.state import ENTITY_PLAYER, PlayerRecord

logger = logging.getLogger(__name__)

# After a failed enqueue (broker down, breaker open) the loop waits this long.
SEND_RETRY_S = 0.25
# How often sent batches are confirmed against the database.
CONFIRM_INTERVAL_S = 0.2
# Shutdown: how long to wait for the worker to commit what was sent.
DRAIN_POLL_S = 0.05

# Blocking: enqueue one batch (a JSON dict).
Send = Callable[[dict[str, Any]], Any]
# Blocking: the stored LSN of each of these entity ids that has a row.
Confirm = Callable[[list[str]], dict[str, int]]
# Runs a blocking call off the loop, e.g. through the ``celery.enqueue`` breaker.
Guard = Callable[..., Awaitable[Any]]


async def unguarded(fn: Callable[..., Awaitable[Any]], *args: Any) -> Any:
    return await fn(*args)


def celery_send(batch: dict[str, Any]) -> Any:
    from gamebackend.players.tasks import flush_batch

    return flush_batch.delay(batch)


def database_confirm(player_ids: list[str]) -> dict[str, int]:
    from django.db import close_old_connections

    from gamebackend.players.selectors import player_lsns

    close_old_connections()  # a thread of the pool: drop a connection the database closed
    return player_lsns(player_ids=player_ids)


# This process's buffer (set by the gateway runtime), for /readyz and the admin.
_node_buffer: FlushBuffer | None = None


def register_node_buffer(buffer: FlushBuffer | None) -> None:
    global _node_buffer
    _node_buffer = buffer


def node_buffer() -> FlushBuffer | None:
    return _node_buffer


@dataclass
class _Batch:
    payload: dict[str, Any]
    lsns: dict[str, int]
    dirty_at: float  # when its oldest version became dirty (monotonic)
    sent_at: float
    sends: int = 1
    first_sent: float = 0.0  # when it was first sent (or taken over from the journal)


class FlushBuffer:
    def __init__(
        self,
        *,
        journal: FlushJournal | None,
        send: Send = celery_send,
        confirm: Confirm = database_confirm,
        guard: Guard = unguarded,
        batch: int = 64,
        window_s: float = 0.01,
        max_entities: int = 100_000,
        redeliver_s: float = 10.0,
        inflight_max: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._journal = journal
        self._send = send
        self._confirm = confirm
        self._guard = guard
        self.batch = batch
        self.window_s = window_s
        self.max_entities = max_entities
        self.redeliver_s = redeliver_s
        # Half the bound may be in flight; the rest coalesces in memory while the
        # database is away.
        self.inflight_max = (
            inflight_max if inflight_max is not None else max(batch, max_entities // 2)
        )
        self._clock = clock
        self._pending: dict[str, PlayerRecord] = {}
        self._first_dirty_at: float | None = None
        self._inflight: dict[str, _Batch] = {}
        self._inflight_entities = 0
        # The newest sent, unconfirmed version per player (a login must not read an
        # older row than what this node already sent).
        self._unconfirmed: dict[str, PlayerRecord] = {}
        self._dirty = asyncio.Event()
        self._full = asyncio.Event()
        self._room = asyncio.Event()
        self._ready = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._closed = False
        # Counters for metrics, /readyz and the benchmarks.
        self.sent_batches = 0
        self.sent_entities = 0
        self.confirmed_batches = 0
        self.redelivered = 0
        self.failures = 0
        self.replayed = 0

    # -- what the node sees ----------------------------------------------------------------

    def __len__(self) -> int:
        """The backlog: entities with a version not yet confirmed (sent or not), each
        counted once however many of its versions are held."""
        unconfirmed = self._unconfirmed
        return len(unconfirmed) + sum(1 for pid in self._pending if pid not in unconfirmed)

    @property
    def over_bound(self) -> bool:
        return len(self) >= self.max_entities

    @property
    def oldest_pending_at(self) -> float | None:
        """When the oldest version not yet confirmed became dirty (monotonic), or None."""
        times = [b.dirty_at for b in self._inflight.values()]
        if self._first_dirty_at is not None:
            times.append(self._first_dirty_at)
        return min(times) if times else None

    async def newest(self, player_id: str) -> PlayerRecord | None:
        """The newest version this node holds for ``player_id`` and has not confirmed."""
        await self._ready.wait()
        return self._pending.get(player_id) or self._unconfirmed.get(player_id)

    # -- the actors' side ------------------------------------------------------------------

    def add(self, record: PlayerRecord) -> None:
        """Hand a new version over (memory only, never blocks); older versions lose."""
        pending = self._pending
        held = pending.get(record.player_id) or self._unconfirmed.get(record.player_id)
        if held is not None and held.lsn >= record.lsn:
            return  # this version (or a newer one) is already held or on its way
        if not pending:
            self._first_dirty_at = self._clock()
            self._dirty.set()
        pending[record.player_id] = record
        if len(pending) >= self.batch:
            self._full.set()

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        if self._tasks:
            return
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._run(), name="flush-buffer"),  # owned by FlushBuffer
            loop.create_task(self._confirm_loop(), name="flush-confirm"),  # owned, too
        ]

    async def close(self, timeout: float = 5.0) -> None:  # noqa: ASYNC109 - a deadline
        """Drain at shutdown: send what is pending, wait up to ``timeout`` for the worker
        to commit it; whatever is still unconfirmed stays journaled for the next start."""
        if self._closed:
            return
        self._closed = True
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if not self._ready.is_set():
            await self._replay()
        deadline = self._clock() + timeout
        while self._pending and self._clock() < deadline:
            if not await self._send_next():
                break
        while self._inflight and self._clock() < deadline:
            await self.confirm_once(resend=False)
            if self._inflight:
                await asyncio.sleep(DRAIN_POLL_S)
        if self._pending and self._journal is not None:
            # Not even enqueued (broker down): journaled, so the next start sends it.
            for payload in self._payloads(list(self._pending.values())):
                await asyncio.to_thread(self._journal.put, payload["id"], payload)
            logger.warning(
                "shutdown: %d unsent player versions kept in the journal", len(self._pending)
            )
        if self._inflight:
            logger.warning(
                "shutdown: %d batches not confirmed yet stay in the journal", len(self._inflight)
            )
        if self._journal is not None:
            await asyncio.to_thread(self._journal.close)

    # -- sending ---------------------------------------------------------------------------

    async def _replay(self) -> None:
        """Take over the batches a previous run of this node left in the journal."""
        try:
            if self._journal is not None:
                leftover = await asyncio.to_thread(self._journal.load)
                now = self._clock()
                for payload in leftover:
                    # Due at once: the confirm pass sends it unless its rows are committed.
                    self._track(payload, dirty_at=now, sent_at=now - self.redeliver_s, sends=0)
                self.replayed = len(leftover)
                if leftover:
                    logger.info("flush journal: %d batches from the last run", len(leftover))
        finally:
            self._ready.set()

    async def _run(self) -> None:
        await self._replay()
        if self._inflight:
            await self.confirm_once()
        while True:
            await self._dirty.wait()
            first = self._first_dirty_at
            delay = 0.0 if first is None else first + self.window_s - self._clock()
            if len(self._pending) < self.batch and delay > 0:
                self._full.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(delay):
                        await self._full.wait()
            while self._pending:
                if self._inflight_entities >= self.inflight_max or self._overdue():
                    # The database is behind: hold (and coalesce) until batches confirm.
                    self._room.clear()
                    await self._room.wait()
                    continue
                if not await self._send_next():
                    await asyncio.sleep(SEND_RETRY_S)
                    break
            if not self._pending:
                self._dirty.clear()
                self._first_dirty_at = None

    def _payloads(self, records: list[PlayerRecord]) -> Iterable[dict[str, Any]]:
        for start in range(0, len(records), self.batch):
            chunk = records[start : start + self.batch]
            yield {
                "id": uuid.uuid4().hex,
                "kind": ENTITY_PLAYER,
                "states": [r.to_json() for r in chunk],
            }

    async def _send_next(self) -> bool:
        """Journal and enqueue the next batch; on failure its versions go back. -> sent?"""
        pending = self._pending
        keys = list(pending)[: self.batch]
        records = [pending.pop(k) for k in keys]
        dirty_at = self._first_dirty_at or self._clock()
        if not pending:
            self._first_dirty_at = None
        payload = next(iter(self._payloads(records)))
        try:
            await self._guard(asyncio.to_thread, self._journal_and_send, payload)
        except Exception as exc:
            self.failures += 1
            logger.warning("enqueueing a flush batch of %d failed (%r); kept", len(records), exc)
            for record in records:
                held = pending.get(record.player_id)
                if held is None or held.lsn < record.lsn:
                    pending[record.player_id] = record
            if self._first_dirty_at is None or dirty_at < self._first_dirty_at:
                self._first_dirty_at = dirty_at
            return False
        now = self._clock()
        self._track(payload, dirty_at=dirty_at, sent_at=now, sends=1)
        self.sent_batches += 1
        self.sent_entities += len(records)
        return True

    def _overdue(self) -> bool:
        """A sent batch is still unconfirmed after ``redeliver_s``: the worker or the
        database is behind, so new versions wait (coalescing) instead of piling up."""
        limit = self._clock() - self.redeliver_s
        return any(b.first_sent <= limit for b in self._inflight.values())

    def _journal_and_send(self, payload: dict[str, Any]) -> None:
        # In a thread. The journal first: a batch the worker may see is always on disk.
        journal = self._journal
        if journal is not None:
            journal.put(payload["id"], payload)
        try:
            self._send(payload)
        except BaseException:
            if journal is not None:
                with contextlib.suppress(Exception):
                    journal.remove([payload["id"]])
            raise

    def _track(
        self, payload: dict[str, Any], *, dirty_at: float, sent_at: float, sends: int
    ) -> None:
        lsns: dict[str, int] = {}
        unconfirmed = self._unconfirmed
        for state in payload["states"]:
            record = PlayerRecord.from_json(state)
            lsns[record.player_id] = record.lsn
            held = unconfirmed.get(record.player_id)
            if held is None or held.lsn < record.lsn:
                unconfirmed[record.player_id] = record
        self._inflight[payload["id"]] = _Batch(payload, lsns, dirty_at, sent_at, sends, sent_at)
        self._inflight_entities += len(lsns)

    # -- confirming ------------------------------------------------------------------------

    async def _confirm_loop(self) -> None:
        while True:
            await asyncio.sleep(CONFIRM_INTERVAL_S)
            if self._inflight:
                try:
                    await self.confirm_once()
                except Exception:
                    logger.exception("confirming flush batches failed; retrying")

    async def confirm_once(self, *, resend: bool = True) -> int:
        """Drop the batches whose rows are committed; send again the overdue ones.

        Returns how many batches were confirmed.
        """
        inflight = self._inflight
        ids = sorted({pid for b in inflight.values() for pid in b.lsns})
        try:
            stored = await asyncio.to_thread(self._confirm, ids)
        except Exception as exc:
            # The database is away: nothing can be confirmed; the worker retries meanwhile.
            logger.debug("reading flushed LSNs back failed: %r", exc)
            stored = None
        done: list[str] = []
        now = self._clock()
        for batch_id, b in list(inflight.items()):
            if stored is not None and all(stored.get(p, -1) >= lsn for p, lsn in b.lsns.items()):
                done.append(batch_id)
                self._forget(batch_id, b, stored)
            elif resend and now - b.sent_at >= self.redeliver_s:
                try:
                    await self._guard(asyncio.to_thread, self._send, b.payload)
                except Exception as exc:
                    logger.warning("re-sending flush batch %s failed: %r", batch_id, exc)
                    break  # the broker is away; try again on the next pass
                b.sent_at = now
                b.sends += 1
                self.redelivered += 1
        if done and self._journal is not None:
            await asyncio.to_thread(self._journal.remove, done)
        self.confirmed_batches += len(done)
        if self._inflight_entities < self.inflight_max and not self._overdue():
            self._room.set()
        return len(done)

    def _forget(self, batch_id: str, b: _Batch, stored: dict[str, int]) -> None:
        del self._inflight[batch_id]
        self._inflight_entities -= len(b.lsns)
        unconfirmed = self._unconfirmed
        for pid in b.lsns:
            held = unconfirmed.get(pid)
            if held is not None and stored.get(pid, -1) >= held.lsn:
                del unconfirmed[pid]

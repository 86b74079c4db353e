"""The flush buffer's logic: batching by size and time, coalescing, the journal, redelivery,
the bound, the drain. Pure logic with a recording ``send`` and an in-memory "database"
(``confirm``); the real worker and database are in test_flush_e2e.py."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from gamebackend.players.flush import FlushBuffer
from gamebackend.players.journal import FlushJournal
from gamebackend.players.state import PlayerRecord


class FakeStore:
    """Stands in for broker + worker + database: ``commit`` applies sent batches."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []
        self.rows: dict[str, int] = {}
        self.fail_send = False

    def send(self, batch: dict[str, Any]) -> None:
        if self.fail_send:
            raise ConnectionError("broker down")
        self.sent.append(batch)

    def commit(self, batch: dict[str, Any]) -> None:
        for state in batch["states"]:
            pid, lsn = state["player_id"], state["lsn"]
            self.rows[pid] = max(self.rows.get(pid, -1), lsn)

    def confirm(self, ids: list[str]) -> dict[str, int]:
        return {pid: self.rows[pid] for pid in ids if pid in self.rows}


def rec(pid: str, lsn: int, x: float = 0.0) -> PlayerRecord:
    return PlayerRecord(pid, x, 0.0, lsn)


def make(store: FakeStore, tmp_path: Path, **kwargs: Any) -> FlushBuffer:
    options: dict[str, Any] = {"batch": 4, "window_s": 0.05, "redeliver_s": 60.0}
    options.update(kwargs)
    return FlushBuffer(
        journal=FlushJournal(tmp_path / "j.sqlite3"),
        send=store.send,
        confirm=store.confirm,
        **options,
    )


async def wait_sent(store: FakeStore, n: int, buf: FlushBuffer | None = None) -> None:
    """Until ``n`` batches reached the fake broker (and ``buf`` tracked them)."""
    async with asyncio.timeout(5):
        while len(store.sent) < n or (buf is not None and buf.sent_batches < n):
            await asyncio.sleep(0.005)


async def test_a_full_batch_leaves_at_once_and_a_partial_one_after_the_window(
    tmp_path: Path,
) -> None:
    store = FakeStore()
    buf = make(store, tmp_path, window_s=30.0)
    buf.start()
    for i in range(4):
        buf.add(rec(f"p{i}", 1))
    await wait_sent(store, 1)
    assert [s["player_id"] for s in store.sent[0]["states"]] == ["p0", "p1", "p2", "p3"]
    await buf.close(0.1)

    store2 = FakeStore()
    buf2 = make(store2, tmp_path / "b", window_s=0.05)
    buf2.start()
    buf2.add(rec("solo", 1))
    assert store2.sent == []
    await wait_sent(store2, 1)
    assert store2.sent[0]["states"][0]["player_id"] == "solo"
    await buf2.close(0.1)


async def test_versions_coalesce_per_entity_and_older_ones_lose(tmp_path: Path) -> None:
    store = FakeStore()
    buf = make(store, tmp_path)
    buf.add(rec("p", 1, x=1))
    buf.add(rec("p", 3, x=3))
    buf.add(rec("p", 2, x=2))  # stale: dropped
    assert len(buf) == 1
    buf.start()
    await wait_sent(store, 1)
    assert store.sent[0]["states"] == [{"player_id": "p", "x": 3.0, "y": 0.0, "lsn": 3}]
    await buf.close(0.1)


async def test_sent_batches_are_journaled_until_confirmed(tmp_path: Path) -> None:
    store = FakeStore()
    buf = make(store, tmp_path)
    journal = FlushJournal(tmp_path / "j.sqlite3")
    buf.start()
    buf.add(rec("p", 1))
    await wait_sent(store, 1, buf)
    assert len(journal) == 1
    assert len(buf) == 1  # in flight
    assert (await buf.newest("p")) == rec("p", 1)
    store.commit(store.sent[0])
    assert await buf.confirm_once() == 1
    assert len(journal) == 0
    assert len(buf) == 0
    assert await buf.newest("p") is None
    await buf.close(0.1)


async def test_an_unconfirmed_batch_is_sent_again(tmp_path: Path) -> None:
    store = FakeStore()
    buf = make(store, tmp_path, redeliver_s=0.0)
    buf.start()
    buf.add(rec("p", 5))
    await wait_sent(store, 1, buf)
    # The worker died with it: nothing committed; the next pass sends it again.
    await buf.confirm_once()
    assert len(store.sent) >= 2
    assert store.sent[-1]["id"] == store.sent[0]["id"]
    assert buf.redelivered >= 1
    store.commit(store.sent[-1])
    await buf.confirm_once()
    assert len(buf) == 0
    await buf.close(0.1)


async def test_a_restarted_node_sends_the_journaled_batches_again(tmp_path: Path) -> None:
    store = FakeStore()
    buf = make(store, tmp_path)
    buf.start()
    buf.add(rec("p", 7, x=4242))
    await wait_sent(store, 1, buf)
    # The node dies here (its tasks are gone, the journal stays on disk).
    for task in buf._tasks:
        task.cancel()
    store2 = FakeStore()
    again = make(store2, tmp_path)
    again.start()
    assert (await again.newest("p")) == rec("p", 7, x=4242)
    await wait_sent(store2, 1)
    assert store2.sent[0]["states"][0]["x"] == 4242
    assert again.replayed == 1
    store2.commit(store2.sent[0])
    await again.confirm_once()
    assert len(FlushJournal(tmp_path / "j.sqlite3")) == 0
    await again.close(0.1)


async def test_a_failed_enqueue_keeps_the_versions_and_the_bound_is_reported(
    tmp_path: Path,
) -> None:
    store = FakeStore()
    store.fail_send = True
    buf = make(store, tmp_path, max_entities=6, inflight_max=100)
    buf.start()
    for i in range(6):
        buf.add(rec(f"p{i}", 1))
    buf.add(rec("p0", 2))  # coalesces: still 6
    await asyncio.sleep(0)  # let the loop try (and fail) once
    async with asyncio.timeout(5):
        while buf.failures == 0:
            await asyncio.sleep(0.01)
    assert len(buf) == 6
    assert buf.over_bound
    assert len(FlushJournal(tmp_path / "j.sqlite3")) == 0  # failed sends leave no rows
    store.fail_send = False
    await wait_sent(store, 2, buf)
    sent = {s["player_id"]: s["lsn"] for b in store.sent for s in b["states"]}
    assert sent == {"p0": 2, "p1": 1, "p2": 1, "p3": 1, "p4": 1, "p5": 1}
    for batch in store.sent:
        store.commit(batch)
    await buf.confirm_once()
    assert len(buf) == 0
    assert not buf.over_bound
    await buf.close(0.1)


async def test_in_flight_is_bounded_while_the_database_is_away(tmp_path: Path) -> None:
    store = FakeStore()
    buf = make(store, tmp_path, batch=2, window_s=0.0, inflight_max=2)
    buf.start()
    buf.add(rec("a", 1))
    buf.add(rec("b", 1))
    await wait_sent(store, 1, buf)
    for lsn in range(2, 10):
        buf.add(rec("c", lsn))
        buf.add(rec("d", lsn))
        await asyncio.sleep(0)
    assert len(store.sent) == 1  # waits for room: c and d coalesce meanwhile
    assert len(buf) == 4
    store.commit(store.sent[0])
    await buf.confirm_once()
    await wait_sent(store, 2, buf)
    assert store.sent[1]["states"] == [
        {"player_id": "c", "x": 0.0, "y": 0.0, "lsn": 9},
        {"player_id": "d", "x": 0.0, "y": 0.0, "lsn": 9},
    ]
    await buf.close(0.1)


async def test_close_drains_and_journals_what_the_broker_refused(tmp_path: Path) -> None:
    store = FakeStore()
    buf = make(store, tmp_path, window_s=30.0, batch=100)
    buf.start()
    buf.add(rec("sent", 1))
    store.fail_send = True
    buf.add(rec("kept", 1))
    await buf.close(0.2)
    journal = FlushJournal(tmp_path / "j.sqlite3")
    left = journal.load()
    assert [s["player_id"] for b in left for s in b["states"]] == ["sent", "kept"]

    # Close with a working broker and worker: everything is sent and confirmed.
    store2 = FakeStore()
    buf2 = make(store2, tmp_path / "c", window_s=30.0, batch=100)
    buf2.start()
    buf2.add(rec("x", 1))

    async def commit_soon() -> None:
        await wait_sent(store2, 1)
        store2.commit(store2.sent[0])

    committer = asyncio.ensure_future(commit_soon())
    await buf2.close(5.0)
    await committer
    assert len(FlushJournal(tmp_path / "c" / "j.sqlite3")) == 0


@pytest.mark.parametrize("n", [0, 1])
async def test_newest_waits_for_the_journal_replay(tmp_path: Path, n: int) -> None:
    store = FakeStore()
    buf = make(store, tmp_path)
    buf.start()
    for i in range(n):
        buf.add(rec(f"p{i}", 1))
    assert (await buf.newest("nobody")) is None
    await buf.close(0.1)

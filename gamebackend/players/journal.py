"""The node's flush journal: every batch sent to the worker stays on disk until committed.

kombu's filesystem transport (the single-machine broker) deletes a message file when a
worker fetches it, so ``acks_late`` cannot redeliver a batch whose worker was killed; on
Redis a killed worker's unacknowledged message only comes back after the visibility
timeout. The node therefore writes each batch here *before* enqueueing it and deletes it
only when it has read the batch's LSNs back from the database (``FlushBuffer``); a batch
not confirmed in time is sent again, and at start the node sends every batch left over
from its previous run. Duplicates are harmless: the upsert's LSN guard absorbs them.

SQLite in WAL mode with ``synchronous=NORMAL``: a commit survives a crash of the process
(``kill -9``), not a power cut. Blocking: call from a thread (``FlushBuffer`` does).
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

__all__ = ["FlushJournal"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS batches (
    batch_id TEXT PRIMARY KEY,
    created_at REAL NOT NULL,
    payload TEXT NOT NULL
)
"""


class FlushJournal:
    def __init__(self, path: Path) -> None:
        self.path = path
        # Used from the flush buffer's threads, one at a time (the lock): sqlite3 objects
        # may cross threads when check_same_thread is off and access is serialised.
        # Opened on first use, in such a thread (never on the event loop).
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None

    @property
    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute(_SCHEMA)
            self._db = db
        return self._db

    def put(self, batch_id: str, payload: dict[str, Any]) -> None:
        with self._lock:
            self._conn.execute(
                "INSERT OR REPLACE INTO batches (batch_id, created_at, payload) VALUES (?, ?, ?)",
                (batch_id, time.time(), json.dumps(payload)),
            )

    def remove(self, batch_ids: list[str]) -> None:
        if not batch_ids:
            return
        with self._lock:
            self._conn.executemany(
                "DELETE FROM batches WHERE batch_id = ?", [(b,) for b in batch_ids]
            )

    def load(self) -> list[dict[str, Any]]:
        """Every batch still journaled (oldest first): left from a previous run, or unsent."""
        with self._lock:
            rows = self._conn.execute("SELECT payload FROM batches ORDER BY created_at").fetchall()
        return [json.loads(row[0]) for row in rows]

    def __len__(self) -> int:
        with self._lock:
            return int(self._conn.execute("SELECT COUNT(*) FROM batches").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

"""L2 on a single machine: a SQLite file under ``GAME_VAR_DIR``, so a node restart (or a
``kill -9``) keeps resumable sessions.

One thread owns the connection; a batch is one transaction. WAL with
``synchronous=NORMAL``: a committed batch survives a process crash (not a power cut).
Rows expire like Redis keys (``GAME_SESSION_L2_TTL_S``); expired ones are pruned.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from gamebackend.gateway.sessionstore.store import WriteBatch

# Expired rows are deleted at most this often (by the writer thread).
PRUNE_INTERVAL_S = 60.0
BUSY_TIMEOUT_S = 5.0
T = TypeVar("T")

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS session (session_id TEXT PRIMARY KEY, player_id TEXT NOT NULL,"
    " expires_at REAL NOT NULL, data BLOB NOT NULL) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS player_session (player_id TEXT PRIMARY KEY,"
    " session_id TEXT NOT NULL, expires_at REAL NOT NULL) WITHOUT ROWID",
)


class SqliteL2:
    def __init__(self, path: Path, *, ttl_s: int) -> None:
        self.path = path
        self._ttl_s = ttl_s
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="session-l2")
        self._conn: sqlite3.Connection | None = None
        self._last_prune = 0.0

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def write(self, batch: WriteBatch) -> None:
        await self._call(self._write, batch, time.time())

    async def load(self, session_id: str, player_id: str) -> tuple[bytes | None, str | None]:
        return await self._call(self._load, session_id, player_id, time.time())

    async def close(self) -> None:
        try:
            await self._call(self._close)
        finally:
            self._executor.shutdown(wait=False)

    # -- the thread ------------------------------------------------------------------------

    def _connection(self) -> sqlite3.Connection:
        conn = self._conn
        if conn is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            for statement in _SCHEMA:
                conn.execute(statement)
            self._conn = conn
        return conn

    def _write(self, batch: WriteBatch, now: float) -> None:
        conn = self._connection()
        expires = now + self._ttl_s
        with conn:
            conn.execute("BEGIN IMMEDIATE")
            if now - self._last_prune >= PRUNE_INTERVAL_S:
                conn.execute("DELETE FROM session WHERE expires_at <= ?", (now,))
                conn.execute("DELETE FROM player_session WHERE expires_at <= ?", (now,))
                self._last_prune = now
            conn.executemany(
                "INSERT OR REPLACE INTO session (session_id, player_id, expires_at, data)"
                " VALUES (?, ?, ?, ?)",
                [(sid, player, expires, data) for sid, player, data in batch.puts],
            )
            conn.executemany(
                "DELETE FROM session WHERE session_id = ?", [(sid,) for sid in batch.deletes]
            )
            conn.executemany(
                "INSERT OR REPLACE INTO player_session (player_id, session_id, expires_at)"
                " VALUES (?, ?, ?)",
                [(player, sid, expires) for player, sid in batch.currents],
            )

    def _load(self, session_id: str, player_id: str, now: float) -> tuple[bytes | None, str | None]:
        conn = self._connection()
        row = conn.execute(
            "SELECT data FROM session WHERE session_id = ? AND expires_at > ?", (session_id, now)
        ).fetchone()
        current = conn.execute(
            "SELECT session_id FROM player_session WHERE player_id = ? AND expires_at > ?",
            (player_id, now),
        ).fetchone()
        return (
            None if row is None else bytes(row[0]),
            None if current is None else str(current[0]),
        )

    def _close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

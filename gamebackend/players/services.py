from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from gamebackend.players.models import Player
from gamebackend.players.state import PlayerRecord

# Columns one upserted row binds (see player_states_upsert).
_UPSERT_COLUMNS = ("player_id", "name", "x", "y", "lsn", "created_at", "updated_at", "last_seen_at")


async def player_get_or_provision(*, player_id: str, name: str = "") -> Player:
    """The player's stored state; a validly authenticated unknown player is created."""
    player, _ = await Player.objects.aget_or_create(player_id=player_id, defaults={"name": name})
    return player


async def player_record_load(*, player_id: str) -> PlayerRecord:
    """The player's stored record (an unknown, validly authenticated player is created)."""
    return PlayerRecord.of(await player_get_or_provision(player_id=player_id))


def _newest(states: Iterable[Mapping[str, Any]]) -> list[PlayerRecord]:
    latest: dict[str, PlayerRecord] = {}
    for state in states:
        record = PlayerRecord.from_json(dict(state))
        seen = latest.get(record.player_id)
        if seen is None or record.lsn > seen.lsn:
            latest[record.player_id] = record
    return list(latest.values())


def upsert_sql(table: str, rows: int, qn: Callable[[str], str]) -> str:
    """The one-statement bulk upsert with the LSN guard, for ``rows`` rows of
    ``_UPSERT_COLUMNS`` (``%s`` placeholders; PostgreSQL and SQLite >= 3.24 alike)."""
    table = qn(table)
    row = "(" + ", ".join(["%s"] * len(_UPSERT_COLUMNS)) + ")"
    updated = ("x", "y", "lsn", "updated_at", "last_seen_at")
    return (
        f"INSERT INTO {table} ({', '.join(qn(c) for c in _UPSERT_COLUMNS)}) "
        f"VALUES {', '.join([row] * rows)} "
        f"ON CONFLICT ({qn('player_id')}) DO UPDATE SET "
        + ", ".join(f"{qn(c)} = excluded.{qn(c)}" for c in updated)
        + f" WHERE {table}.{qn('lsn')} < excluded.{qn('lsn')}"
    )


def player_states_upsert(*, states: Iterable[Mapping[str, Any]]) -> int:
    """Write a batch of player versions (JSON dicts) in ONE statement; returns rows written.

    ``INSERT ... ON CONFLICT (player_id) DO UPDATE ... WHERE stored.lsn < excluded.lsn``
    (the same text on PostgreSQL and SQLite >= 3.24): a version whose LSN is not above the
    stored one (stale, or a duplicate batch delivered twice) changes nothing, so the write
    is idempotent and batches may arrive in any order. Within one batch only the newest
    version per player is kept (one statement cannot touch a row twice).
    """
    records = _newest(states)
    if not records:
        return 0
    now = timezone.now()
    params: list[Any] = []
    for r in records:
        params += [r.player_id, "", r.x, r.y, r.lsn, now, now, now]
    sql = upsert_sql(Player._meta.db_table, len(records), connection.ops.quote_name)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return max(cursor.rowcount, 0)


def player_state_force(*, record: PlayerRecord, floor: int = 0) -> PlayerRecord:
    """Store ``record``'s state for an offline player above every stored version.

    The stored LSN is read and bumped in one transaction (above ``floor`` too), so the
    written version wins against any older flush still in flight. Returns it.
    """
    with transaction.atomic():
        player, _ = Player.objects.select_for_update().get_or_create(player_id=record.player_id)
        written = PlayerRecord.of(player).restored(record, floor=floor)
        player.x, player.y, player.lsn = written.x, written.y, written.lsn
        player.save(update_fields=["x", "y", "lsn", "updated_at"])
    return written

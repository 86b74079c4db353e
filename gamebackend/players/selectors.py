from __future__ import annotations

from collections.abc import Iterable

from gamebackend.players.models import Player
from gamebackend.players.state import PlayerRecord

# Player ids per query when reading LSNs back (well below SQLite's bound-parameter limit).
LSN_QUERY_CHUNK = 2000


def player_lsns(*, player_ids: Iterable[str]) -> dict[str, int]:
    """The stored LSN of each of ``player_ids`` that has a row (blocking: run in a thread)."""
    ids = list(player_ids)
    found: dict[str, int] = {}
    for start in range(0, len(ids), LSN_QUERY_CHUNK):
        chunk = ids[start : start + LSN_QUERY_CHUNK]
        found.update(Player.objects.filter(player_id__in=chunk).values_list("player_id", "lsn"))
    return found


def player_record_get(*, player_id: str) -> PlayerRecord | None:
    """The stored record of ``player_id``, or None (blocking)."""
    player = Player.objects.filter(player_id=player_id).first()
    return None if player is None else PlayerRecord.of(player)

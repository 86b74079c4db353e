from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from django.db import transaction
from django.utils import timezone

from gamebackend.players.models import Player
from gamebackend.players.state import PlayerRecord

STATE_FIELDS = ("x", "y", "rev")


async def player_get_or_provision(*, player_id: str, name: str = "") -> Player:
    """The player's stored state; a validly authenticated unknown player is created."""
    player, _ = await Player.objects.aget_or_create(player_id=player_id, defaults={"name": name})
    return player


async def player_record_load(*, player_id: str) -> PlayerRecord:
    """The player's stored record (an unknown, validly authenticated player is created)."""
    return PlayerRecord.of(await player_get_or_provision(player_id=player_id))


def player_states_save(*, states: Iterable[Mapping[str, Any]]) -> int:
    """Bulk-save player states; a state older (lower ``rev``) than the stored one loses.

    Idempotent: re-running with the same states changes nothing. Returns rows written.
    """
    latest: dict[str, Mapping[str, Any]] = {}
    for state in states:
        pid = str(state["player_id"])
        if pid not in latest or int(state["rev"]) > int(latest[pid]["rev"]):
            latest[pid] = state
    if not latest:
        return 0
    now = timezone.now()
    written = 0
    with transaction.atomic():
        existing = set(
            Player.objects.filter(player_id__in=latest).values_list("player_id", flat=True)
        )
        missing = [
            Player(player_id=pid, x=s["x"], y=s["y"], rev=s["rev"], last_seen_at=now)
            for pid, s in latest.items()
            if pid not in existing
        ]
        if missing:
            # A concurrent provision may win the insert; the update below then applies.
            Player.objects.bulk_create(missing, ignore_conflicts=True)
        for pid, state in latest.items():
            written += Player.objects.filter(player_id=pid, rev__lt=int(state["rev"])).update(
                x=float(state["x"]),
                y=float(state["y"]),
                rev=int(state["rev"]),
                last_seen_at=now,
                updated_at=now,
            )
    return written + len(missing)

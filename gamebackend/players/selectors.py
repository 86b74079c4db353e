"""Reads of player data that are not the live record (the actor holds that)."""

from __future__ import annotations

from datetime import datetime

from django.utils import timezone

from gamebackend.players.models import Player, PlayerBlock


def player_blocks_active() -> dict[str, datetime]:
    """Player id -> until when for every block still in force (the latest one wins)."""
    blocks: dict[str, datetime] = {}
    for player_id, until in PlayerBlock.objects.filter(until__gt=timezone.now()).values_list(
        "player_id", "until"
    ):
        if player_id not in blocks or until > blocks[player_id]:
            blocks[player_id] = until
    return blocks


def player_get(*, player_id: str) -> Player | None:
    """The player's stored row (None when it never connected)."""
    return Player.objects.filter(player_id=player_id).first()

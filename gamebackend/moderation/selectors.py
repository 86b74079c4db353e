from __future__ import annotations

from datetime import datetime

from django.utils import timezone

from gamebackend.moderation.models import PlayerBlock


def player_blocks_active() -> dict[str, datetime]:
    """Player id -> until when for every block still in force (the latest one wins)."""
    blocks: dict[str, datetime] = {}
    for player_id, until in PlayerBlock.objects.filter(until__gt=timezone.now()).values_list(
        "player_id", "until"
    ):
        if player_id not in blocks or until > blocks[player_id]:
            blocks[player_id] = until
    return blocks

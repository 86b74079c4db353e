from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

from django.utils import timezone

from gamebackend.moderation.models import PlayerBlock


class ActiveBlock(NamedTuple):
    until: datetime
    reason: str


def player_blocks_active() -> dict[str, ActiveBlock]:
    """Player id -> the block still in force that ends last (its end and reason)."""
    blocks: dict[str, ActiveBlock] = {}
    for player_id, until, reason in PlayerBlock.objects.filter(
        until__gt=timezone.now()
    ).values_list("player_id", "until", "reason"):
        if player_id not in blocks or until > blocks[player_id].until:
            blocks[player_id] = ActiveBlock(until, reason)
    return blocks

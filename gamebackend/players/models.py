from __future__ import annotations

from django.core.validators import RegexValidator
from django.db import models

PLAYER_ID_PATTERN = r"^[A-Za-z0-9_.:-]{1,64}$"


class Player(models.Model):
    """A player's durable state; the PlayerActor holds the live copy while they play."""

    player_id = models.CharField(
        max_length=64, unique=True, validators=[RegexValidator(PLAYER_ID_PATTERN)]
    )
    name = models.CharField(max_length=32, blank=True)
    x = models.FloatField(default=0.0)
    y = models.FloatField(default=0.0)
    # Grows by one per change; a write carrying a lower rev than the stored one is stale
    # and loses (flushes may arrive out of order).
    rev = models.BigIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    last_seen_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return self.player_id

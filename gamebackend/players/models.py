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
    # The stored version's LSN (players/state.py): grows by one per change; a flush
    # carrying an LSN not above the stored one is stale or a duplicate and loses.
    lsn = models.BigIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    last_seen_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return self.player_id


class FlushDeadLetter(models.Model):
    """A flush batch that failed ``GAME_FLUSH_MAX_RETRIES`` times in the worker.

    Not lost: the node still holds the batch in its journal and sends it again; this row
    makes the failure visible (console) with the last error.
    """

    batch_id = models.CharField(max_length=64, db_index=True)
    entity_kind = models.CharField(max_length=16, default="player")
    entities = models.PositiveIntegerField()
    payload = models.JSONField()
    error = models.TextField(blank=True)
    attempts = models.PositiveIntegerField(default=0)
    failed_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("-failed_at",)

    def __str__(self) -> str:
        return f"flush batch {self.batch_id} ({self.entities} {self.entity_kind})"

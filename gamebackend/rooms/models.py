from __future__ import annotations

from django.db import models


class Battle(models.Model):
    """One battle of a room: from its first join until it idled out (``ended_at``).

    A room re-created on another node after its node died continues the same battle.
    """

    battle_id = models.CharField(max_length=32, unique=True)
    room_id = models.CharField(max_length=64, db_index=True)
    tick_rate = models.PositiveSmallIntegerField()
    max_players = models.PositiveSmallIntegerField()
    input_delay = models.PositiveSmallIntegerField()
    late_policy = models.CharField(max_length=8)
    sim = models.CharField(max_length=64, blank=True)
    # The last tick a persisted chunk covers (-1: none yet).
    last_tick = models.BigIntegerField(default=-1)
    started_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("-started_at",)
        indexes = [models.Index(fields=["room_id", "-started_at"])]

    def __str__(self) -> str:
        return f"{self.room_id} ({self.battle_id})"


class ReplayChunk(models.Model):
    """A flushed batch of a battle's closed frames: ticks ``first_tick..last_tick``.

    ``frames`` holds only the frames with inputs, as ``[[tick, [[player_id, keys], ...]],
    ...]``; every other tick of the range closed with no input.
    """

    battle = models.ForeignKey(Battle, on_delete=models.CASCADE, related_name="chunks")
    first_tick = models.BigIntegerField()
    last_tick = models.BigIntegerField()
    frames = models.JSONField(default=list)

    class Meta:
        ordering = ("first_tick",)
        constraints = [
            models.UniqueConstraint(fields=["battle", "first_tick"], name="replay_chunk_once")
        ]

    def __str__(self) -> str:
        return f"{self.battle_id} {self.first_tick}..{self.last_tick}"

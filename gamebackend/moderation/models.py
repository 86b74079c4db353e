from __future__ import annotations

from django.db import models


class PlayerBlock(models.Model):
    """An operator's block: the player's upgrades are refused (``player_blocked``) until then."""

    player_id = models.CharField(max_length=64, db_index=True)
    until = models.DateTimeField(db_index=True)
    reason = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("-until",)

    def __str__(self) -> str:
        return f"{self.player_id} until {self.until:%Y-%m-%d %H:%M:%S}"

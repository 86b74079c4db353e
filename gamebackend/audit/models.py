"""Every operator action taken in the console (or by a management command on its behalf)."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class AuditEntry(models.Model):
    class Kind(models.TextChoices):
        RULE = "rule", "rule edit"
        BREAKER = "breaker", "breaker command"
        KICK = "kick", "kick"
        BLOCK = "block", "kick and block"
        NOTICE = "notice", "system message"
        ROOM = "room", "room action"
        RESTORE = "restore", "snapshot restore"
        SNAPSHOT = "snapshot", "snapshot taken"

    at = models.DateTimeField(auto_now_add=True, db_index=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    kind = models.CharField(max_length=16, choices=Kind.choices, db_index=True)
    # What the action was about: a rule's resource, a breaker, a player or room id.
    target = models.CharField(max_length=200)
    action = models.CharField(max_length=40)
    detail = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ("-at", "-id")
        verbose_name = "audit entry"
        verbose_name_plural = "audit log"
        # The console's "may act" permission (the operators group has it, staff-viewers not).
        permissions = [("operate", "Act on live players, rooms and breakers from the console")]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.kind} {self.action} {self.target}"

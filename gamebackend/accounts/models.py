"""Player identity: accounts, their devices, refresh sessions and login lockouts.

Players are not Django users (those are the console's staff): an `Account` owns one player
id and the ways to get tickets for it (a device id, a username and password, or neither for
a guest). Credentials are stored hashed: passwords with Django's hashers, device ids and
refresh tokens with SHA-256 (they are long random or device-unique strings).
"""

from __future__ import annotations

from django.core.validators import RegexValidator
from django.db import models

from gamebackend.players.models import PLAYER_ID_PATTERN

SHA256_HEX_LENGTH = 64


class Account(models.Model):
    class Kind(models.TextChoices):
        GUEST = "guest"
        DEVICE = "device"
        PASSWORD = "password"

    player_id = models.CharField(
        max_length=64, unique=True, validators=[RegexValidator(PLAYER_ID_PATTERN)]
    )
    # Lowercase (usernames are case-insensitive); null for device and guest accounts.
    username = models.CharField(max_length=32, unique=True, null=True, blank=True)
    # A Django password hash; empty when the account has no password.
    password = models.CharField(max_length=256, blank=True)
    # How the account was created (guest, device id, username and password).
    kind = models.CharField(max_length=16, choices=Kind.choices)
    created_at = models.DateTimeField(auto_now_add=True)
    last_login_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.username or self.player_id


class Device(models.Model):
    """A device id that logs into its account (`POST /api/auth/device`)."""

    device_hash = models.CharField(max_length=SHA256_HEX_LENGTH, unique=True)
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="devices")
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"device {self.device_hash[:12]}… of {self.account}"


class RefreshSession(models.Model):
    """One login's chain of refresh tokens; only the latest token of the chain is valid.

    A token is ``<public_id>.<secret>``; the row keeps the hash of the current secret. A
    refresh replaces it (rotation); presenting an older secret of the chain means the token
    was copied, so the whole session is revoked.
    """

    public_id = models.CharField(max_length=32, unique=True)
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="sessions")
    token_hash = models.CharField(max_length=SHA256_HEX_LENGTH)
    created_at = models.DateTimeField(auto_now_add=True)
    refreshed_at = models.DateTimeField(null=True, blank=True)
    rotations = models.PositiveIntegerField(default=0)
    expires_at = models.DateTimeField(db_index=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_reason = models.CharField(max_length=32, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"session {self.public_id} of {self.account}"


class LoginLockout(models.Model):
    """Failed password logins of one username from one client address (like django-axes)."""

    username = models.CharField(max_length=32)
    ip_address = models.CharField(max_length=64)
    failures = models.PositiveIntegerField(default=0)
    last_failure_at = models.DateTimeField(db_index=True)
    locked_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["username", "ip_address"], name="accounts_lockout_unique"
            )
        ]
        ordering = ["-last_failure_at"]

    def __str__(self) -> str:
        return f"{self.username} from {self.ip_address}"

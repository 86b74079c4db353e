"""The shapes of credentials (usernames, device ids, passwords, refresh tokens), no Django.

Device ids and refresh-token secrets are stored as SHA-256 digests: they are long,
unguessable (or device-unique) strings, so a fast digest is enough to keep a copy of the
database from being a list of working credentials. Passwords use Django's hashers
(`accounts/passwords.py`).
"""

from __future__ import annotations

import hashlib
import re
import secrets
from typing import Final

from gamebackend.accounts.errors import BadRefreshToken, Invalid

# Usernames are case-insensitive: stored and compared lowercase.
USERNAME_RE: Final = re.compile(r"[a-z0-9_.-]{3,32}")
USERNAME_RULE: Final = "3-32 characters: letters, digits, '_', '.', '-'"
# Nakama's rule (10-128); visible ASCII only, so no id differs from another by invisibles.
DEVICE_ID_RE: Final = re.compile(r"[\x21-\x7e]{10,128}")
DEVICE_ID_RULE: Final = "10-128 visible ASCII characters"
# Hashing cost does not grow with the length, but nobody types more than this.
PASSWORD_MAX: Final = 1024
# <public_id>.<secret>: 12 + 32 random bytes, url-safe base64 (no dots).
REFRESH_PUBLIC_BYTES: Final = 12
REFRESH_SECRET_BYTES: Final = 32
_TOKEN_PART_RE: Final = re.compile(r"[A-Za-z0-9_-]{16,64}")


def username_normalize(value: object) -> str:
    if not isinstance(value, str):
        raise Invalid("username is required (a string)", field="username")
    username = value.lower()
    if not USERNAME_RE.fullmatch(username):
        raise Invalid(f"username must be {USERNAME_RULE}", field="username")
    return username


def password_shape(value: object) -> str:
    if not isinstance(value, str) or not value:
        raise Invalid("password is required (a string)", field="password")
    if len(value) > PASSWORD_MAX:
        raise Invalid(f"password must be at most {PASSWORD_MAX} characters", field="password")
    return value


def device_id_check(value: object) -> str:
    if not isinstance(value, str) or not DEVICE_ID_RE.fullmatch(value):
        raise Invalid(f"device_id must be {DEVICE_ID_RULE}", field="device_id")
    return value


def digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def refresh_token_new() -> tuple[str, str]:
    """A new session's public id and first secret."""
    return secrets.token_urlsafe(REFRESH_PUBLIC_BYTES), secrets.token_urlsafe(REFRESH_SECRET_BYTES)


def refresh_secret_new() -> str:
    return secrets.token_urlsafe(REFRESH_SECRET_BYTES)


def refresh_token_join(public_id: str, secret: str) -> str:
    return f"{public_id}.{secret}"


def refresh_token_split(value: object) -> tuple[str, str]:
    """``(public_id, secret)`` of a well-formed refresh token, else BadRefreshToken."""
    if not isinstance(value, str):
        raise Invalid("refresh_token is required (a string)", field="refresh_token")
    public_id, dot, secret = value.partition(".")
    if not dot or not _TOKEN_PART_RE.fullmatch(public_id) or not _TOKEN_PART_RE.fullmatch(secret):
        raise BadRefreshToken()
    return public_id, secret

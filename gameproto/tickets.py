"""Connect tickets: the claims a ticket carries and minting one (for tools and tests).

A ticket is a short-lived HS256 JWT with `sub` (the player id), `iat`, `exp` and a
single-use `jti`. A game's own login service mints them with the shared secret
(`GAME_JWT_SECRET`); the server verifies them (gamebackend/gateway/tickets.py). Needs the
`PyJWT` package (the SDK's `tools` extra).
"""

from __future__ import annotations

import math
import re
import secrets
import time
from typing import Final

import jwt

__all__ = [
    "ALGORITHM",
    "DEFAULT_TICKET_TTL_S",
    "JTI_BYTES",
    "MAX_JTI_LENGTH",
    "REQUIRED_CLAIMS",
    "SUB_RE",
    "mint_ticket",
]

ALGORITHM: Final = "HS256"
REQUIRED_CLAIMS: Final = ("sub", "iat", "exp", "jti")
# A ticket is meant to be used right away; its lifetime only covers the round trip. The
# server refuses lifetimes (`exp - iat`) above its GAME_TICKET_TTL_S (default this value).
DEFAULT_TICKET_TTL_S: Final = 30
SUB_RE: Final = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
MAX_JTI_LENGTH: Final = 128
# 16 random bytes -> 22 url-safe chars: unguessable and far below MAX_JTI_LENGTH.
JTI_BYTES: Final = 16


def mint_ticket(
    *,
    secret: str | bytes,
    sub: str,
    ttl_s: float = DEFAULT_TICKET_TTL_S,
    now: float | None = None,
    jti: str | None = None,
) -> str:
    """A fresh ticket for player `sub`, valid for `ttl_s` seconds from `now`."""
    if not SUB_RE.fullmatch(sub):
        raise ValueError("sub must be 1-64 chars of [A-Za-z0-9_.:-]")
    issued = int(time.time() if now is None else now)
    payload = {
        "sub": sub,
        "iat": issued,
        "exp": issued + math.ceil(ttl_s),
        "jti": jti if jti is not None else secrets.token_urlsafe(JTI_BYTES),
    }
    return jwt.encode(payload, secret, algorithm=ALGORITHM)

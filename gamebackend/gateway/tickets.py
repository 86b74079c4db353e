"""Checking connect tickets (minted by gameproto.tickets) before the WebSocket upgrade.

No Django imports: settings (secret, max age, lifetime) are passed in by the caller. Tokens
are bearer credentials — never log them; use `redact_ticket` on query strings. The stores
that remember used `jti`s are in `gateway/replay.py`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Protocol
from urllib.parse import unquote_plus

import jwt

from gameproto.tickets import (
    ALGORITHM,
    DEFAULT_TICKET_TTL_S,
    MAX_JTI_LENGTH,
    REQUIRED_CLAIMS,
    SUB_RE,
)

__all__ = [
    "DEFAULT_MAX_AGE_S",
    "DEFAULT_MAX_LIFETIME_S",
    "ReplayStore",
    "TicketClaims",
    "TicketRejected",
    "check_ticket",
    "redact_ticket",
    "verify_ticket",
]

# GAME_TICKET_MAX_AGE_S default: how far `iat` may be from the server clock, either way
# (the design's 30 s anti-replay window).
DEFAULT_MAX_AGE_S: Final = 30.0
# GAME_TICKET_TTL_S default: the longest lifetime (`exp - iat`) a ticket may claim. With
# the lifetime within the iat window, a ticket is good until its `exp`, never cut short.
DEFAULT_MAX_LIFETIME_S: Final = float(DEFAULT_TICKET_TTL_S)
REDACTED: Final = "[redacted]"


class TicketRejected(Exception):
    """The ticket is not acceptable; `reason` is a short machine-readable word for logs."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class TicketClaims:
    sub: str
    iat: float
    exp: float
    jti: str


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


# We check exp/iat/sub/jti ourselves so `now` is injectable and the iat window is
# symmetric (PyJWT would reject any future iat); PyJWT verifies the signature and presence.
_DECODE_OPTIONS: Final[Any] = {
    "verify_signature": True,
    "verify_exp": False,
    "verify_iat": False,
    "verify_nbf": False,
    "verify_aud": False,
    "verify_iss": False,
    "verify_sub": False,
    "verify_jti": False,
    "require": list(REQUIRED_CLAIMS),
}


def verify_ticket(
    token: str,
    *,
    secret: str | bytes,
    max_age_s: float = DEFAULT_MAX_AGE_S,
    max_lifetime_s: float = DEFAULT_MAX_LIFETIME_S,
    now: float | None = None,
) -> TicketClaims:
    """Check signature, algorithm and claims (not replay; see `check_ticket`).

    Refused: `exp` passed, `iat` more than `max_age_s` from `now` (either way), or a
    lifetime (`exp - iat`) above `max_lifetime_s` (a long-lived ticket would be replayable
    for long and would have to be remembered for long).
    """
    if not isinstance(token, str) or not token:
        raise TicketRejected("malformed")
    try:
        header = jwt.get_unverified_header(token)
    except jwt.DecodeError:
        raise TicketRejected("malformed") from None
    if header.get("alg") != ALGORITHM:
        raise TicketRejected("bad_algorithm")
    try:
        payload: Mapping[str, Any] = jwt.decode(
            token, secret, algorithms=[ALGORITHM], options=_DECODE_OPTIONS
        )
    except jwt.InvalidSignatureError:
        raise TicketRejected("bad_signature") from None
    except jwt.InvalidAlgorithmError:
        raise TicketRejected("bad_algorithm") from None
    except jwt.MissingRequiredClaimError:
        raise TicketRejected("missing_claim") from None
    except jwt.InvalidTokenError:
        raise TicketRejected("malformed") from None

    sub, iat, exp, jti = (payload[claim] for claim in REQUIRED_CLAIMS)
    if not isinstance(sub, str) or not SUB_RE.fullmatch(sub):
        raise TicketRejected("malformed_claim")
    if not isinstance(jti, str) or not 0 < len(jti) <= MAX_JTI_LENGTH:
        raise TicketRejected("malformed_claim")
    if not _is_number(iat) or not _is_number(exp):
        raise TicketRejected("malformed_claim")
    if exp <= iat:
        raise TicketRejected("malformed_claim")
    if exp - iat > max_lifetime_s:
        raise TicketRejected("lifetime_too_long")
    current = time.time() if now is None else now
    if current >= exp:
        raise TicketRejected("expired")
    if abs(current - iat) > max_age_s:
        raise TicketRejected("stale_iat")
    return TicketClaims(sub=sub, iat=float(iat), exp=float(exp), jti=jti)


# --- anti-replay (the stores are in gateway/replay.py) ------------------------------------


class ReplayStore(Protocol):
    async def claim(self, jti: str, exp: float) -> bool:
        """Record `jti` until `exp`; True only the first time it is claimed."""
        ...

    async def close(self) -> None: ...


async def check_ticket(
    token: str,
    *,
    secret: str | bytes,
    store: ReplayStore,
    max_age_s: float = DEFAULT_MAX_AGE_S,
    max_lifetime_s: float = DEFAULT_MAX_LIFETIME_S,
    now: float | None = None,
) -> TicketClaims:
    """Verify the ticket, then claim its jti; a second use raises TicketRejected("replayed")."""
    claims = verify_ticket(
        token, secret=secret, max_age_s=max_age_s, max_lifetime_s=max_lifetime_s, now=now
    )
    if not await store.claim(claims.jti, claims.exp):
        raise TicketRejected("replayed")
    return claims


def redact_ticket(query_string: str | bytes) -> str:
    """The query string with every `ticket` value replaced by `[redacted]`, for logs.

    Names are compared percent-decoded, as the server's query parser would see them, so a
    `%74icket=` spelling cannot smuggle a token into the access log.
    """
    if isinstance(query_string, bytes):
        query_string = query_string.decode("latin-1")
    parts = query_string.split("&")
    for index, part in enumerate(parts):
        name, sep, _value = part.partition("=")
        if unquote_plus(name) == "ticket":
            parts[index] = f"{name}={REDACTED}" if sep else part
    return "&".join(parts)

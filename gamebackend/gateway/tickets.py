"""Checking connect tickets (minted by gameproto.tickets) before the WebSocket upgrade.

No Django imports: settings (secret, max age) are passed in by the caller. Tokens are
bearer credentials — never log them; use `redact_ticket` on query strings.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Protocol
from urllib.parse import unquote_plus

import jwt

from gameproto.tickets import ALGORITHM, MAX_JTI_LENGTH, REQUIRED_CLAIMS, SUB_RE

if TYPE_CHECKING:
    import redis.asyncio

__all__ = [
    "DEFAULT_MAX_AGE_S",
    "LocalReplayStore",
    "RedisReplayStore",
    "ReplayStore",
    "ReplayStoreFull",
    "TicketClaims",
    "TicketRejected",
    "check_ticket",
    "redact_ticket",
    "verify_ticket",
]

# GAME_TICKET_MAX_AGE_S default: how far `iat` may be from the server clock, either way.
DEFAULT_MAX_AGE_S: Final = 30.0
# LocalReplayStore capacity: tickets live ~a minute, so this allows ~16k connects/s per
# process before failing closed.
DEFAULT_LOCAL_STORE_MAX: Final = 1_000_000
REDIS_KEY_PREFIX: Final = "game:ticket:jti:"
REDACTED: Final = "[redacted]"


class TicketRejected(Exception):
    """The ticket is not acceptable; `reason` is a short machine-readable word for logs."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ReplayStoreFull(TicketRejected):
    """The local replay store is at capacity; fail closed rather than forget a live jti."""

    def __init__(self) -> None:
        super().__init__("replay_store_full")


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
    now: float | None = None,
) -> TicketClaims:
    """Check signature, algorithm and claims (not replay; see `check_ticket`)."""
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
    current = time.time() if now is None else now
    if current >= exp:
        raise TicketRejected("expired")
    if abs(current - iat) > max_age_s:
        raise TicketRejected("stale_iat")
    return TicketClaims(sub=sub, iat=float(iat), exp=float(exp), jti=jti)


# --- anti-replay ---------------------------------------------------------------------


class ReplayStore(Protocol):
    async def claim(self, jti: str, exp: float) -> bool:
        """Record `jti` until `exp`; True only the first time it is claimed."""
        ...


class LocalReplayStore:
    """In-process jti memory for the single-machine profile.

    A dict in insertion order doubles as an expiry queue: tickets share one TTL, so older
    entries expire first and pruning pops from the front — O(1) amortized per claim. An
    entry with a later expiry ahead of earlier ones only delays pruning; it never causes
    a jti to be forgotten before its own expiry.
    """

    def __init__(
        self, *, max_entries: int = DEFAULT_LOCAL_STORE_MAX, clock: Callable[[], float] = time.time
    ) -> None:
        self._seen: dict[str, float] = {}
        self._max_entries = max_entries
        self._clock = clock

    def __len__(self) -> int:
        return len(self._seen)

    def _prune(self, now: float) -> None:
        seen = self._seen
        while seen:
            oldest = next(iter(seen))
            if seen[oldest] > now:
                return
            del seen[oldest]

    async def claim(self, jti: str, exp: float) -> bool:
        now = self._clock()
        self._prune(now)
        if jti in self._seen:
            return False
        if len(self._seen) >= self._max_entries:
            raise ReplayStoreFull()
        self._seen[jti] = exp
        return True


class RedisReplayStore:
    """Cluster-wide jti memory: `SET key 1 NX EXAT exp` succeeds once per jti."""

    def __init__(self, client: redis.asyncio.Redis, *, prefix: str = REDIS_KEY_PREFIX) -> None:
        self._client = client
        self._prefix = prefix

    async def claim(self, jti: str, exp: float) -> bool:
        # EXAT takes whole seconds; round up so the key lives at least as long as the ticket.
        stored = await self._client.set(self._prefix + jti, 1, nx=True, exat=math.ceil(exp))
        return bool(stored)


async def check_ticket(
    token: str,
    *,
    secret: str | bytes,
    store: ReplayStore,
    max_age_s: float = DEFAULT_MAX_AGE_S,
    now: float | None = None,
) -> TicketClaims:
    """Verify the ticket, then claim its jti; a second use raises TicketRejected("replayed")."""
    claims = verify_ticket(token, secret=secret, max_age_s=max_age_s, now=now)
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

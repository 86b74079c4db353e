"""Limits, error codes and close codes of the game wire contract (docs/PROTOCOL.md)."""

from __future__ import annotations

import enum
from typing import Final

__all__ = [
    "BAD_MESSAGE",
    "BUSY",
    "CIRCUIT_OPEN",
    "DEFAULT_WORLD_SIZE",
    "ERROR_CODES",
    "INT64_MAX",
    "INT64_MIN",
    "INTERNAL",
    "INVALID",
    "MAX_ID_LENGTH",
    "MAX_NOTICE_LENGTH",
    "RATE_LIMITED",
    "REFUSED_ORIGIN",
    "REFUSED_PLAYER_BLOCKED",
    "REFUSED_QUERY",
    "REFUSED_SHUTTING_DOWN",
    "REFUSED_SUBPROTOCOL",
    "REFUSED_TICKET_PREFIX",
    "REFUSED_TOO_MANY_CONNECTIONS",
    "ROOM_FULL",
    "SYNC_TOO_OLD",
    "UNKNOWN_TYPE",
    "CloseCode",
    "ticket_refusal",
]

# Request ids are echoed verbatim; a bound keeps replies small and log lines sane.
MAX_ID_LENGTH: Final = 64
# Ints on the wire are bounded to int64 so every value we accept can be re-encoded by
# both codecs (msgpack cannot carry integers beyond 64 bits) and by JS clients' BigInt.
INT64_MIN: Final = -(2**63)
INT64_MAX: Final = 2**63 - 1
# Default GAME_WORLD_SIZE: move coordinates must lie in [0, world_size].
DEFAULT_WORLD_SIZE: Final = 10_000.0

BAD_MESSAGE: Final = "bad_message"
UNKNOWN_TYPE: Final = "unknown_type"
INVALID: Final = "invalid"
RATE_LIMITED: Final = "rate_limited"
BUSY: Final = "busy"
INTERNAL: Final = "internal"
CIRCUIT_OPEN: Final = "circuit_open"
ROOM_FULL: Final = "room_full"  # a join to a room that has max_players members
SYNC_TOO_OLD: Final = "sync_too_old"  # a sync from a tick no longer in the room's history
ERROR_CODES: Final = frozenset(
    {
        BAD_MESSAGE, UNKNOWN_TYPE, INVALID, RATE_LIMITED, BUSY, INTERNAL, CIRCUIT_OPEN,
        ROOM_FULL, SYNC_TOO_OLD,
    }
)  # fmt: skip

# Why an upgrade was refused: the `code` of the JSON body of a refused upgrade
# (`{"error": {"code", "message"}}`, HTTP 403; 429 for too many connections).
REFUSED_ORIGIN: Final = "origin_not_allowed"
REFUSED_QUERY: Final = "too_many_query_parameters"
REFUSED_SUBPROTOCOL: Final = "no_supported_subprotocol"
REFUSED_SHUTTING_DOWN: Final = "shutting_down"
REFUSED_TOO_MANY_CONNECTIONS: Final = "too_many_connections"
# An operator blocked the player for a while (console: kick and block).
REFUSED_PLAYER_BLOCKED: Final = "player_blocked"
# An operator's system message (`notice`) is at most this many characters.
MAX_NOTICE_LENGTH: Final = 500
# A refused ticket: the prefix and the checker's reason, e.g. `ticket_expired`.
REFUSED_TICKET_PREFIX: Final = "ticket_"


def ticket_refusal(reason: str) -> str:
    """The refusal code of a ticket refused for ``reason`` (``expired`` -> ``ticket_expired``)."""
    return REFUSED_TICKET_PREFIX + reason


class CloseCode(enum.IntEnum):
    NORMAL = 1000  # client ends the session; not resumable
    GOING_AWAY = 1001  # server shutting down; resumable
    TOO_BIG = 1009  # frame over GAME_MAX_MESSAGE_BYTES
    INTERNAL_ERROR = 1011  # the server could not set the session up; retry
    TRY_AGAIN_LATER = 1013  # the node's flush backlog is over its bound; retry with backoff
    KICKED = 4000  # an operator ended the session; the reason is theirs; not resumable
    BAD_MESSAGES = 4400  # too many bad_message/invalid/unknown_type errors
    HEARTBEAT_TIMEOUT = 4408  # pings unanswered; resumable
    REPLACED = 4409  # a newer connection of the same player took over
    OUTBOX_FULL = 4413  # too many un-acked messages; not resumable
    RATE_LIMITED = 4429  # rate-limit abuse

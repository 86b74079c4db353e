"""Pure bookkeeping of one client session, kept apart from I/O so it can be unit-tested.

- `InboundStream`: exactly-once delivery of seq'd server messages and cumulative acks.
- `HeartbeatMonitor`: when the client pings, and when silence means the connection is dead.
- `PendingRequests`: futures of in-flight requests, matched to replies by `re`.
- `should_reconnect`, `build_url`: reconnect policy and the connect URL.
"""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import urlencode, urlsplit, urlunsplit

from gameproto import CloseCode, Error, ServerMessage

from ._errors import GameError, SequenceGap

# Ack right away (instead of waiting for the ack interval) once this many messages are
# un-acked, so a burst never gets near the server's outbox limit (GAME_OUTBOX_MAX 1024).
ACK_BATCH_MAX: Final = 256
# The contract's GAME_HEARTBEAT_MISSES: this many missed server pings mean dead.
DEFAULT_HEARTBEAT_MISSES: Final = 3
# Pings are timer-driven on the server; allow this fraction of an interval for their jitter.
HEARTBEAT_SLACK: Final = 0.1

# Closes after which reconnecting would be wrong: the server ended the session on purpose
# (1000), an operator kicked the player (4000), or another connection of this player took
# it over (4409 — fighting back would make two clients replace each other forever).
FINAL_CLOSE_CODES: Final = frozenset({CloseCode.NORMAL, CloseCode.KICKED, CloseCode.REPLACED})


@dataclass(frozen=True, slots=True)
class UnknownMessage:
    """A server message of a type this SDK version does not know (delivered, not dropped)."""

    type: str
    seq: int | None
    body: dict[str, Any] = field(default_factory=dict)


class InboundStream:
    """Dedupe and ack state for the reliable server->client stream of one session."""

    def __init__(self) -> None:
        self.delivered = 0  # highest seq handed to the app; all lower ones were too
        self.acked = 0  # highest seq acked on the current connection

    def accept(self, seq: int) -> bool:
        """True if `seq` is new and should be delivered; False for a duplicate.

        Raises SequenceGap if the server skipped ahead: the stream is in order by contract,
        so the client drops the connection and resumes from `delivered`.
        """
        if seq <= self.delivered:
            return False
        if seq != self.delivered + 1:
            raise SequenceGap(f"expected seq {self.delivered + 1}, got {seq}")
        self.delivered = seq
        return True

    @property
    def unacked(self) -> int:
        return self.delivered - self.acked

    def ack_urgent(self) -> bool:
        return self.unacked >= ACK_BATCH_MAX

    def take_ack(self) -> int | None:
        """The cumulative seq to ack now, or None if everything delivered is acked."""
        if self.delivered <= self.acked:
            return None
        self.acked = self.delivered
        return self.delivered

    def on_resumed(self) -> None:
        """A resumed connection: re-ack what we have so the server can trim its outbox."""
        self.acked = 0

    def reset(self) -> None:
        """A new session: its seqs start again at 1."""
        self.delivered = 0
        self.acked = 0


class HeartbeatMonitor:
    """Liveness of the server as the client sees it (docs/PROTOCOL.md, Heartbeat).

    Any server frame proves the server alive. The server pings only clients that were
    silent, so a client that keeps sending hears replies instead of pings; when nothing
    arrived for a heartbeat interval the client pings (once per silent interval), and when
    nothing arrived for `misses` intervals (plus slack) the connection is dead.
    """

    def __init__(
        self, heartbeat_s: float, now: float, *, misses: int = DEFAULT_HEARTBEAT_MISSES
    ) -> None:
        self.heartbeat_s = heartbeat_s
        self.window_s = heartbeat_s * (misses + HEARTBEAT_SLACK)
        self.last_seen = now  # the welcome starts the clock
        self.last_ping_sent = now

    def on_frame(self, now: float) -> None:
        self.last_seen = now

    @property
    def deadline(self) -> float:
        return self.last_seen + self.window_s

    def is_dead(self, now: float) -> bool:
        return now >= self.deadline

    @property
    def ping_at(self) -> float:
        """When the client should ping: a heartbeat interval after the later of the last
        server frame and its own last ping."""
        return max(self.last_seen, self.last_ping_sent) + self.heartbeat_s

    def ping_due(self, now: float) -> bool:
        return now >= self.ping_at

    def on_ping_sent(self, now: float) -> None:
        self.last_ping_sent = now


def error_from(msg: Error) -> GameError:
    return GameError(msg.code, msg.message, retry_after_ms=msg.retry_after_ms, field=msg.field)


class PendingRequests:
    """In-flight requests by id; each is answered exactly once by a message with `re`."""

    def __init__(self) -> None:
        self._ids = itertools.count(1)
        self._futures: dict[int | str, asyncio.Future[ServerMessage]] = {}
        # Ids actually written to a connection: only these are lost with a session; the
        # others are still waiting to be sent and will go out on the new one.
        self._sent: set[int | str] = set()

    def __len__(self) -> int:
        return len(self._futures)

    def new_id(self) -> int:
        return next(self._ids)

    def add(self, req_id: int | str) -> asyncio.Future[ServerMessage]:
        if req_id in self._futures:
            raise ValueError(f"request id {req_id!r} is already in flight")
        future: asyncio.Future[ServerMessage] = asyncio.get_running_loop().create_future()
        self._futures[req_id] = future
        return future

    def mark_sent(self, req_id: int | str) -> None:
        if req_id in self._futures:
            self._sent.add(req_id)

    def discard(self, req_id: int | str) -> None:
        self._futures.pop(req_id, None)
        self._sent.discard(req_id)

    def resolve(self, re: int | str, msg: ServerMessage) -> bool:
        """Complete the request `re` with `msg` (an `error` raises); False if none waits."""
        future = self._futures.pop(re, None)
        if future is None:
            return False
        self._sent.discard(re)
        if not future.done():
            if isinstance(msg, Error):
                future.set_exception(error_from(msg))
            else:
                future.set_result(msg)
        return True

    def sent_ids(self) -> set[int | str]:
        return set(self._sent)

    def fail_ids(self, ids: set[int | str], exc: BaseException) -> None:
        """Fail these requests if they still wait (their replies were lost)."""
        for req_id in ids:
            self._sent.discard(req_id)
            future = self._futures.pop(req_id, None)
            if future is not None and not future.done():
                future.set_exception(exc)

    def fail_all(self, exc: BaseException) -> None:
        futures, self._futures = self._futures, {}
        self._sent.clear()
        for future in futures.values():
            if not future.done():
                future.set_exception(exc)

    def fail_sent(self, exc: BaseException) -> None:
        """Fail the requests already sent (their session is gone); unsent ones stay."""
        sent, self._sent = self._sent, set()
        for req_id in sent:
            future = self._futures.pop(req_id, None)
            if future is not None and not future.done():
                future.set_exception(exc)


def should_reconnect(close_code: int | None) -> bool:
    return close_code not in FINAL_CLOSE_CODES


def build_url(base_url: str, ticket: str, *, resume: str | None = None, last_seq: int = 0) -> str:
    """`base_url` with `ticket` (and resume parameters) added to its query string."""
    parts = urlsplit(base_url)
    params: list[tuple[str, str]] = [("ticket", ticket)]
    if resume is not None:
        params += [("resume", resume), ("last_seq", str(last_seq))]
    query = "&".join(q for q in (parts.query, urlencode(params)) if q)
    return urlunsplit(parts._replace(query=query))

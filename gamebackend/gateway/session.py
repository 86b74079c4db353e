"""A player's session: the reliable outbound stream that outlives a single connection."""

from __future__ import annotations

import secrets
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from gamebackend.gateway.heartbeat import Heartbeating
from gamebackend.gateway.outbox import Outbox, OutboxFull

SESSION_ID_BYTES = 12


class Connection(Heartbeating, Protocol):
    """What a session and the hub need of the socket it is bound to (the consumer)."""

    session: Session | None

    async def write(self, msg: Any) -> None: ...

    async def close_with(self, code: int, reason: str = "") -> None: ...


def _unchanged(session: Session) -> None:
    return None


class Session:
    """Numbered, acknowledged delivery to the player, across reconnects (resume).

    Messages always go to the outbox first; they are written to the socket only while a
    connection is bound. Binding (a new or resumed connection) writes everything in the
    outbox past the client's ``last_seq`` first, so nothing is lost or duplicated.
    """

    __slots__ = (
        "changed", "conn", "detach_epoch", "ended", "on_overflow", "outbox", "player_id",
        "restored", "sealed", "session_id", "stored_frames",
    )  # fmt: skip

    def __init__(
        self,
        *,
        player_id: str,
        outbox_max: int,
        on_overflow: Callable[[Session], Awaitable[None]],
        changed: Callable[[Session], None] = _unchanged,
        session_id: str | None = None,
    ) -> None:
        self.session_id = session_id or secrets.token_urlsafe(SESSION_ID_BYTES)
        self.player_id = player_id
        self.outbox = Outbox(outbox_max)
        self.conn: Connection | None = None
        # Called when the client left outbox_max messages un-acked (the hub closes 4413).
        self.on_overflow = on_overflow
        self.ended = False
        # Grows on every disconnect so a stale grace timer recognises itself.
        self.detach_epoch = 0
        # The session store's hook: marks the session for the next L2 batch (memory only).
        self.changed = changed
        # Restored from L2 on this node (its actor needs to send the full state once).
        self.restored = False
        # Handed over to another node: its final record is written, then it is forgotten.
        self.sealed = False
        # (seq, msgpack frame) of the outbox as last written to L2 (see sessionstore).
        self.stored_frames: deque[tuple[int, bytes]] = deque()

    async def emit(self, msg: Any) -> None:
        """Number ``msg``, keep it until acknowledged, and write it if connected."""
        if self.ended:
            return
        try:
            self.outbox.push(msg)
        except OutboxFull:
            await self.on_overflow(self)
            return
        self.changed(self)
        conn = self.conn
        if conn is not None:
            await conn.write(msg)

    def ack(self, seq: int) -> bool:
        """Cumulative ack from the client; False (no change) for a seq never sent."""
        if not self.outbox.ack(seq):
            return False
        self.changed(self)
        return True

    async def bind(self, conn: Connection, *, after_seq: int) -> None:
        """Attach ``conn``: write every kept message past ``after_seq``, then go live."""
        self.conn = None
        sent = after_seq
        while True:
            pending = self.outbox.items_after(sent)
            if not pending:
                break
            for msg in pending:
                await conn.write(msg)
                sent = msg.seq
        # No await between the empty check above and this line: nothing slips past.
        self.conn = conn

    def __repr__(self) -> str:
        return f"<Session {self.session_id} player={self.player_id} seq={self.outbox.last_seq}>"

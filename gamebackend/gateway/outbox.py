"""The reliable stream's outbox: seq numbering, cumulative acks, replay on resume.

Pure logic (no I/O), so it is unit- and property-tested on its own.
"""

from __future__ import annotations

from collections import deque
from typing import Any


class OutboxFull(Exception):
    """The client left ``limit`` messages un-acknowledged (close 4413)."""


class Outbox:
    """Server messages sent in a session and not yet acknowledged by the client.

    Every message gets the next ``seq`` (1, 2, 3...). ``ack(n)`` is cumulative: it drops
    every message with ``seq <= n``. ``replay_after(n)`` gives the messages with
    ``seq > n`` for a resuming client, or ``None`` when the outbox no longer reaches back
    to ``n`` (it was acknowledged and dropped) or ``n`` was never sent.
    """

    __slots__ = ("_items", "acked_seq", "last_seq", "limit")

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError("outbox limit must be at least 1")
        self._items: deque[Any] = deque()
        self.limit = limit
        self.last_seq = 0
        self.acked_seq = 0

    def __len__(self) -> int:
        return len(self._items)

    @property
    def full(self) -> bool:
        return len(self._items) >= self.limit

    def push(self, msg: Any) -> int:
        """Number ``msg`` (sets ``msg.seq``) and keep it until acknowledged."""
        if len(self._items) >= self.limit:
            raise OutboxFull(f"{self.limit} messages not acknowledged")
        self.last_seq += 1
        msg.seq = self.last_seq
        self._items.append(msg)
        return self.last_seq

    def ack(self, seq: int) -> bool:
        """Drop messages up to ``seq``; False (and no change) for a seq never sent."""
        if seq > self.last_seq:
            return False
        items = self._items
        while items and items[0].seq <= seq:
            items.popleft()
        if seq > self.acked_seq:
            self.acked_seq = seq
        return True

    def restore(self, *, acked_seq: int, last_seq: int, items: list[Any]) -> None:
        """Continue a session kept elsewhere (L2): ``items`` are ``acked_seq+1..last_seq``."""
        if len(items) > self.limit:
            raise OutboxFull(f"{len(items)} messages restored, limit {self.limit}")
        self._items = deque(items)
        self.acked_seq = acked_seq
        self.last_seq = last_seq

    def items_after(self, seq: int) -> list[Any]:
        """Kept messages with a ``seq`` greater than the given one, oldest first."""
        items = self._items
        if not items or items[-1].seq <= seq:
            return []
        # Kept seqs are contiguous, so the position is arithmetic, not a search.
        start = max(0, seq - items[0].seq + 1)
        return [items[i] for i in range(start, len(items))]

    def replay_after(self, seq: int) -> list[Any] | None:
        """Messages with ``seq`` greater than the given one, oldest first (see class doc)."""
        if seq < self.acked_seq or seq > self.last_seq:
            return None
        # Resuming at ``seq`` also acknowledges everything up to it.
        self.ack(seq)
        return list(self._items)

"""Cross-node fan-out of the event bus over the channel layer (cluster profile).

Subscribed to every type on the node's bus, it only appends this node's own events to a
list (memory; the publisher's tick or message path never waits). Every
``FANOUT_EVERY_S`` the list goes to the ``game.events`` group as **one** channel-layer
message (``{"type": "game.events", "node": ..., "events": [...]}``, at most
``MAX_BATCH`` events each), so the layer carries one message per node per interval, not
one per event. Every node's fan-out is in the group: it republishes the events of the
other nodes on its own bus, marked ``remote`` (so they are neither sent out again nor
recorded a second time by the event log), and ignores its own batch, which the group
hands back to it too.

Lossy by design, like the bus: a batch the layer refuses is logged and dropped, the list
is bounded (oldest dropped, counted), and a node that is down misses what was published
meanwhile. The durable record is the event log (``EventForwarder``), written once, by the
publishing node. The layer is duck-typed (``new_channel``, ``group_add``, ``group_send``,
``receive``): no Django here.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Final

from gamebackend.events.bus import DomainEvent, EventBus

__all__ = ["EVENTS_GROUP", "FANOUT_EVERY_S", "EventFanout"]

logger = logging.getLogger(__name__)

EVENTS_GROUP: Final = "game.events"
MESSAGE_TYPE: Final = "game.events"
# How often a node's new events go to the other nodes (their extra latency).
FANOUT_EVERY_S: Final = 0.05
# Events per channel-layer message (a larger backlog goes as several messages).
MAX_BATCH: Final = 500
# Events held between two sends; beyond it the oldest are dropped (and counted).
MAX_HELD: Final = 10_000
# channels-redis forgets group members after a day (group_expiry): re-join well before.
GROUP_REFRESH_S: Final = 3600.0
# After a failed receive (the layer is away), wait this long before the next try.
RECEIVE_RETRY_S: Final = 1.0
# After close cancels the tasks, wait at most this long for them to end.
CANCEL_GRACE_S: Final = 1.0
# A send that takes longer is abandoned (the batch dropped): a stuck layer must not pile up.
SEND_TIMEOUT_S: Final = 2.0


class EventFanout:
    def __init__(
        self, *, bus: EventBus, layer: Any, node: str, every_s: float = FANOUT_EVERY_S
    ) -> None:
        self.bus = bus
        self.layer = layer
        self.node = node
        self.every_s = every_s
        self._held: list[dict[str, Any]] = []
        self.channel: str | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._closing = False
        self.sent_events = 0
        self.sent_messages = 0
        self.received = 0
        self.dropped = 0
        self.invalid = 0

    def __call__(self, event: DomainEvent) -> None:
        if event.remote:
            return  # another node's event, heard here: it already went round
        if len(self._held) >= MAX_HELD:
            self._held.pop(0)
            self.dropped += 1
        self._held.append(event.to_json())

    async def flush(self) -> None:
        """Send what is held, ``MAX_BATCH`` events per channel-layer message."""
        while self._held:
            batch, self._held = self._held[:MAX_BATCH], self._held[MAX_BATCH:]
            try:
                async with asyncio.timeout(SEND_TIMEOUT_S):
                    await self.layer.group_send(
                        EVENTS_GROUP, {"type": MESSAGE_TYPE, "node": self.node, "events": batch}
                    )
            except Exception as exc:
                self.dropped += len(batch)
                logger.warning("fanning out %d events failed (%r); dropped", len(batch), exc)
                continue
            self.sent_messages += 1
            self.sent_events += len(batch)

    def deliver(self, message: dict[str, Any]) -> None:
        """One batch from the group: republish another node's events on this bus."""
        if message.get("type") != MESSAGE_TYPE or message.get("node") == self.node:
            return
        node = str(message.get("node", ""))
        for item in message.get("events", ()):
            try:
                event = DomainEvent(
                    type=item["type"],
                    data=dict(item.get("data") or {}),
                    at=float(item.get("at", time.time())),
                    node=node,
                    remote=True,
                )
            except (KeyError, TypeError, ValueError) as exc:
                # E.g. a newer node's event type this node does not know yet.
                self.invalid += 1
                logger.warning("ignoring a fanned-out event from %s: %r", node, exc)
                continue
            self.received += 1
            self.bus.publish(event)

    async def join(self) -> str:
        """Join the group (idempotent); the channel this node's batches arrive on."""
        if self.channel is None:
            self.channel = await self.layer.new_channel("events.")
        await self.layer.group_add(EVENTS_GROUP, self.channel)
        return self.channel

    async def _receive(self) -> None:
        while not self._closing:
            try:
                channel = self.channel or await self.join()
                message = await self.layer.receive(channel)
            except Exception as exc:
                if self._closing:
                    return  # the layer's pools closed under a receive that ignored cancel
                # The layer is away (Redis down): try again; events meanwhile are missed.
                logger.warning("receiving fanned-out events failed (%r); retrying", exc)
                await asyncio.sleep(RECEIVE_RETRY_S)
                continue
            self.deliver(message)

    async def _send(self) -> None:
        refresh_at = time.monotonic() + GROUP_REFRESH_S
        while True:
            await asyncio.sleep(self.every_s)
            await self.flush()
            if time.monotonic() >= refresh_at:
                refresh_at += GROUP_REFRESH_S
                try:
                    await self.join()
                except Exception as exc:
                    logger.warning("re-joining %s failed (%r)", EVENTS_GROUP, exc)

    def start(self) -> None:
        """Start receiving and sending (two tasks owned by the fan-out; ``close`` ends them)."""
        if self._tasks:
            return
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._receive(), name="event-fanout-receive"),  # owned here
            loop.create_task(self._send(), name="event-fanout-send"),  # owned here
        ]

    async def close(self) -> None:
        """Stop both tasks, then send what is still held."""
        self._closing = True
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        if tasks:
            # A channels-redis receive can take its blocking pop's timeout to notice the
            # cancellation: wait a bounded time, like the actor transport does.
            await asyncio.wait(tasks, timeout=CANCEL_GRACE_S)
        await self.flush()

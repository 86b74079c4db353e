"""Cross-node fan-out of the event bus: two nodes' buses (one process, two real
channels-redis layers on one Redis, as two nodes have), batched, never echoed."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from channels_redis.core import RedisChannelLayer

from gamebackend.events.bus import ALL, DomainEvent, EventBus
from gamebackend.events.fanout import EventFanout
from gamebackend.events.forwarder import EventForwarder

WAIT_S = 10.0


class Node:
    def __init__(self, name: str, layer: Any) -> None:
        self.bus = EventBus(workers=2)
        self.fanout = EventFanout(bus=self.bus, layer=layer, node=name, every_s=3600.0)
        self.bus.subscribe(ALL, self.fanout)
        self.heard: list[DomainEvent] = []
        self.arrived = asyncio.Event()
        self.expect = 0
        self.bus.subscribe("room.created", self._hear)

    def _hear(self, event: DomainEvent) -> None:
        self.heard.append(event)
        if len(self.heard) >= self.expect:
            self.arrived.set()

    def wait_for(self, count: int) -> asyncio.Event:
        """An event set once this node's subscriber has heard ``count`` events."""
        self.expect = count
        self.arrived = asyncio.Event()
        if len(self.heard) >= count:
            self.arrived.set()
        return self.arrived

    def publish(self, n: int) -> None:
        self.bus.publish(DomainEvent(type="room.created", data={"n": n}, node=self.fanout.node))


@contextlib.asynccontextmanager
async def two_nodes(redis_url: str) -> AsyncIterator[tuple[Node, Node]]:
    prefix = f"test{uuid.uuid4().hex[:8]}"
    layers = [RedisChannelLayer(hosts=[redis_url], prefix=prefix) for _ in range(2)]
    nodes = (Node("a@127.0.0.1:1", layers[0]), Node("b@127.0.0.1:2", layers[1]))
    try:
        for node in nodes:
            node.bus.start()
            await node.fanout.join()  # in the group before anything is sent
            node.fanout.start()
        yield nodes
    finally:
        for node in nodes:
            await node.fanout.close()
            await node.bus.close()
        await layers[0].flush()
        for layer in layers:
            await layer.close_pools()


async def wait_handled(bus: EventBus, count: int) -> None:
    async with asyncio.timeout(WAIT_S):
        while bus.handled < count:
            await asyncio.sleep(0.005)


@pytest.mark.cluster
async def test_events_reach_the_other_node_in_one_message_per_batch_and_never_echo(
    redis_url: str,
) -> None:
    async with two_nodes(redis_url) as (a, b):
        b_heard = b.wait_for(50)
        for n in range(50):
            a.publish(n)
        await wait_handled(a.bus, 50)  # all 50 held by a's fan-out
        await a.fanout.flush()
        # One channel-layer message for the whole batch, not one per event.
        assert (a.fanout.sent_messages, a.fanout.sent_events) == (1, 50)
        await asyncio.wait_for(b_heard.wait(), WAIT_S)
        assert [e.data["n"] for e in b.heard] == list(range(50))
        assert all(e.remote and e.node == "a@127.0.0.1:1" for e in b.heard)
        # b does not send a's events back, and a ignores its own batch from the group.
        await wait_handled(b.bus, 50)
        await b.fanout.flush()
        assert b.fanout.sent_messages == 0
        # The other direction, while a's receive loop has had its own batch back.
        a_heard = a.wait_for(51)
        b.publish(99)
        await wait_handled(b.bus, 51)
        await b.fanout.flush()
        await asyncio.wait_for(a_heard.wait(), WAIT_S)
        assert [e.data["n"] for e in a.heard] == [*range(50), 99]  # each exactly once
        assert [e.remote for e in a.heard] == [False] * 50 + [True]
        assert a.fanout.received == 1
        assert b.fanout.received == 50


async def test_remote_events_are_not_recorded_again_and_bad_batches_are_counted() -> None:
    sent: list[list[dict[str, Any]]] = []
    forwarder = EventForwarder(send=sent.append)
    forwarder(DomainEvent(type="room.created", node="a"))
    forwarder(DomainEvent(type="room.created", node="b", remote=True))
    await forwarder.flush()
    assert [[e["node"] for e in batch] for batch in sent] == [["a"]]

    bus = EventBus(workers=1)
    fanout = EventFanout(bus=bus, layer=None, node="me")
    fanout.deliver({"type": "game.events", "node": "me", "events": [{"type": "room.created"}]})
    assert len(bus) == 0  # its own batch, from the group: ignored
    fanout.deliver(
        {
            "type": "game.events",
            "node": "other",
            "events": [{"type": "no.such"}, "junk", {"type": "room.ended", "data": {"r": 1}}],
        }
    )
    assert (fanout.invalid, fanout.received, len(bus)) == (2, 1, 1)

"""The in-process event bus: delivery by type, isolation of failing handlers, drops."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from gamebackend.events.bus import ALL, DomainEvent, EventBus
from gamebackend.events.forwarder import EventForwarder


async def wait_handled(bus: EventBus, n: int) -> None:
    async with asyncio.timeout(5):
        while bus.handled < n:
            await asyncio.sleep(0.001)


async def test_subscribers_hear_their_type_and_all_hears_everything() -> None:
    bus = EventBus(workers=2)
    online: list[str] = []
    everything: list[str] = []

    async def on_online(event: DomainEvent) -> None:
        online.append(event.data["player_id"])

    bus.subscribe("player.online", on_online)
    bus.subscribe(ALL, lambda event: everything.append(event.type))
    bus.start()
    bus.publish(DomainEvent("player.online", {"player_id": "p"}))
    bus.publish(DomainEvent("room.created", {"room": "r"}))
    await wait_handled(bus, 2)
    assert online == ["p"]
    assert sorted(everything) == ["player.online", "room.created"]
    await bus.close()


async def test_a_failing_handler_is_logged_and_the_others_still_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    bus = EventBus(workers=1)
    seen: list[int] = []

    def broken(event: DomainEvent) -> None:
        raise RuntimeError("handler bug")

    bus.subscribe("battle.desync", broken)
    bus.subscribe("battle.desync", lambda event: seen.append(event.data["tick"]))
    bus.start()
    for tick in range(3):
        bus.publish(DomainEvent("battle.desync", {"tick": tick}))
    await wait_handled(bus, 3)
    assert seen == [0, 1, 2]
    assert bus.failures == 3
    assert "event handler" in caplog.text
    await bus.close()


async def test_a_full_queue_drops_and_counts_without_blocking() -> None:
    bus = EventBus(workers=1, queue_max=3)  # not started: nothing drains the queue
    results = [bus.publish(DomainEvent("rule.changed", {"n": n})) for n in range(5)]
    assert results == [True, True, True, False, False]
    assert (bus.published, bus.dropped, len(bus)) == (3, 2, 3)


def test_unknown_types_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown event type"):
        DomainEvent("player.teleported")
    with pytest.raises(ValueError, match="unknown event type"):
        EventBus().subscribe("nope", lambda event: None)


async def test_the_forwarder_sends_batches_and_drops_what_the_broker_refuses() -> None:
    sent: list[list[dict[str, Any]]] = []
    broken = [False]

    def send(batch: list[dict[str, Any]]) -> None:
        if broken[0]:
            raise ConnectionError("broker down")
        sent.append(batch)

    forwarder = EventForwarder(send=send)
    forwarder(DomainEvent("player.online", {"player_id": "a"}, node="n1"))
    forwarder(DomainEvent("player.offline", {"player_id": "a"}, node="n1"))
    await forwarder.flush()
    assert [e["type"] for e in sent[0]] == ["player.online", "player.offline"]
    assert sent[0][0]["node"] == "n1"
    broken[0] = True
    forwarder(DomainEvent("player.online", {"player_id": "b"}))
    await forwarder.flush()
    assert (forwarder.sent, forwarder.dropped) == (2, 1)

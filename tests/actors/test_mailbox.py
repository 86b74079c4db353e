from __future__ import annotations

import asyncio
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actors import DEFAULT_MAILBOX_SIZE, ActorSystem, MailboxFull
from tests.actors.helpers import Block, Get, Lifecycle, Recorder


async def test_default_size_and_system_override() -> None:
    assert DEFAULT_MAILBOX_SIZE == 1024
    async with ActorSystem(default_mailbox_size=3) as system:
        ref = await system.spawn(Recorder)
        assert ref._cell.capacity == 3
        big = await system.spawn(Recorder, mailbox_size=10)
        assert big._cell.capacity == 10


async def test_reject_raises_mailbox_full_and_counts(system: ActorSystem) -> None:
    ref = await system.spawn(Recorder, mailbox_size=2)
    block = Block()
    ref.tell(block)
    await block.entered.wait()  # the handler holds the actor; the mailbox is now empty
    ref.tell(1)
    ref.tell(2)
    with pytest.raises(MailboxFull, match="full"):
        ref.tell(3)
    assert system.stats()["totals"]["mailbox_rejected"] == 1
    block.release.set()
    assert await ref.ask(Get()) == [1, 2]


async def test_drop_oldest_evicts_and_counts(system: ActorSystem) -> None:
    ref = await system.spawn(Recorder, mailbox_size=2, overflow="drop_oldest")
    block = Block()
    ref.tell(block)
    await block.entered.wait()
    for i in range(5):
        ref.tell(i)  # never raises
    assert system.stats()["totals"]["mailbox_dropped"] == 3
    block.release.set()
    assert await ref.ask(Get()) == [3, 4]


async def test_drop_oldest_fails_an_evicted_ask(system: ActorSystem) -> None:
    ref = await system.spawn(Recorder, mailbox_size=1, overflow="drop_oldest")
    block = Block()
    ref.tell(block)
    await block.entered.wait()
    pending = asyncio.ensure_future(ref.ask("first"))
    await asyncio.sleep(0)  # let the ask enqueue
    ref.tell("second")
    with pytest.raises(MailboxFull):
        await pending
    block.release.set()
    assert await ref.ask(Get()) == ["second"]


@pytest.mark.parametrize("overflow", ["reject", "drop_oldest"])
async def test_send_waits_for_room_instead_of_raising(system: ActorSystem, overflow: Any) -> None:
    ref = await system.spawn(Recorder, mailbox_size=2, overflow=overflow)
    block = Block()
    ref.tell(block)
    await block.entered.wait()
    ref.tell(0)
    ref.tell(1)
    producer = asyncio.ensure_future(ref.send(2))
    await asyncio.sleep(0.01)  # bounded "nothing happens" check: the producer must wait
    assert not producer.done()
    block.release.set()
    await producer
    assert await ref.ask(Get()) == [0, 1, 2]
    totals = system.stats()["totals"]
    assert totals["mailbox_rejected"] == totals["mailbox_dropped"] == 0


async def test_send_backpressure_delivers_everything_in_order(system: ActorSystem) -> None:
    ref = await system.spawn(Recorder, mailbox_size=4)
    for i in range(1000):
        await ref.send(i)
    assert await ref.ask(Get()) == list(range(1000))


async def test_waiting_sender_released_when_actor_stops(system: ActorSystem) -> None:
    ref = await system.spawn(Recorder, mailbox_size=1)
    block = Block()
    ref.tell(block)
    await block.entered.wait()
    ref.tell(0)
    producer = asyncio.ensure_future(ref.send(1))
    await asyncio.sleep(0)
    stopping = asyncio.ensure_future(system.stop(ref))
    await asyncio.sleep(0)
    block.release.set()
    await stopping
    await producer  # dead-lettered, never raises
    assert system.stats()["totals"]["dead_letters"] >= 2  # the queued 0 and the late 1


async def test_stop_overtakes_queued_user_messages(system: ActorSystem) -> None:
    events: list[str] = []
    ref = await system.spawn(Lifecycle, events)
    block = Block()
    ref.tell(block)
    await block.entered.wait()
    for i in range(10):
        ref.tell(i)
    stopping = asyncio.ensure_future(system.stop(ref))
    await asyncio.sleep(0)
    block.release.set()
    await stopping
    assert events == ["start", "stop"]
    assert ref._cell._processed == 1  # only the blocking message ran
    assert system.stats()["totals"]["dead_letters"] == 10


async def test_idle_actor_holds_no_task_and_no_buffer(system: ActorSystem) -> None:
    ref = await system.spawn(Recorder)
    cell = ref._cell
    assert cell.task is None
    assert cell._q is None
    ref.tell("x")
    assert cell.task is not None
    await ref.ask(Get())
    await asyncio.sleep(0)  # the drain task finishes right after answering
    assert cell.task is None
    assert cell._q is None
    assert system.running_tasks() == set()


@settings(max_examples=30, deadline=None)
@given(
    capacity=st.integers(min_value=1, max_value=8),
    ops=st.lists(st.sampled_from(["tell", "tick"]), max_size=60),
    drop_oldest=st.booleans(),
)
def test_mailbox_bound_is_never_exceeded(capacity: int, ops: list[str], drop_oldest: bool) -> None:
    async def scenario() -> None:
        async with ActorSystem() as system:
            overflow: Any = "drop_oldest" if drop_oldest else "reject"
            ref = await system.spawn(Recorder, mailbox_size=capacity, overflow=overflow)
            accepted: list[int] = []
            for n, op in enumerate(ops):
                if op == "tick":
                    await asyncio.sleep(0)  # let the actor drain some
                    continue
                try:
                    ref.tell(n)
                    accepted.append(n)
                except MailboxFull:
                    assert not drop_oldest
                    assert len(ref._cell) == capacity
                assert len(ref._cell) <= capacity
            log = await ref.ask(Get())
            # Whatever survived is an in-order subsequence of what was accepted.
            positions = [accepted.index(m) for m in log]
            assert positions == sorted(positions)
            if not drop_oldest:
                assert log == accepted
            totals = system.stats()["totals"]
            assert totals["mailbox_dropped"] == len(accepted) - len(log)

    asyncio.run(scenario())


@settings(max_examples=20, deadline=None)
@given(per_sender=st.lists(st.integers(min_value=0, max_value=50), min_size=1, max_size=5))
def test_per_sender_order_is_preserved(per_sender: list[int]) -> None:
    async def scenario() -> None:
        async with ActorSystem() as system:
            ref = await system.spawn(Recorder, mailbox_size=8)

            async def produce(sender: int, count: int) -> None:
                for i in range(count):
                    if i % 3 == 0:
                        await asyncio.sleep(0)
                    await ref.send((sender, i))

            async with asyncio.TaskGroup() as group:
                for sender, count in enumerate(per_sender):
                    group.create_task(produce(sender, count))
            log = await ref.ask(Get())
            assert len(log) == sum(per_sender)
            for sender, count in enumerate(per_sender):
                assert [i for s, i in log if s == sender] == list(range(count))

    asyncio.run(scenario())


async def test_one_actor_never_runs_two_handlers_at_once(system: ActorSystem) -> None:
    from actors import Actor

    class Overlap(Actor):
        def __init__(self) -> None:
            self.active = 0
            self.max_active = 0

        async def on_receive(self, msg: Any) -> Any:
            if msg == "max":
                return self.max_active
            self.active += 1
            self.max_active = max(self.max_active, self.active)
            await asyncio.sleep(0)
            self.active -= 1
            return None

    ref = await system.spawn(Overlap)
    await asyncio.gather(*(ref.ask(i) for i in range(200)))
    assert await ref.ask("max") == 1

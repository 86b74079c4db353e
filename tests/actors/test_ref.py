from __future__ import annotations

import asyncio
from typing import Any

import pytest

from actors import Actor, ActorRef, ActorStopped, ActorSystem, AskTimeout, MailboxFull
from tests.actors.helpers import Block, Fail, Get, Recorder


async def test_ask_returns_the_handler_value(system: ActorSystem) -> None:
    ref = await system.spawn(Recorder)
    assert await ref.ask(7, timeout=1.0) == 7
    assert await ref.ask(Get(), timeout=None) == [7]


async def test_handler_exception_reaches_the_asker_and_the_supervisor(
    system: ActorSystem,
) -> None:
    ref = await system.spawn(Recorder)
    ref.tell("kept-in-log-of-first-instance")
    with pytest.raises(KeyError, match="nope"):
        await ref.ask(Fail(KeyError("nope")))
    # Default directive is RESTART: a fresh instance, so the log is empty again.
    assert await ref.ask(Get()) == []
    stats = system.stats()["actors"][str(ref.pid)]
    assert stats["failed"] == 1
    assert stats["restarts"] == 1


async def test_ask_timeout(system: ActorSystem) -> None:
    ref = await system.spawn(Recorder)
    block = Block()
    with pytest.raises(AskTimeout, match="timed out") as info:
        await ref.ask(block, timeout=0.02)
    assert isinstance(info.value, TimeoutError)
    block.release.set()
    # The actor still processed the message; only the answer was lost.
    assert await ref.ask(Get()) == []


async def test_ask_waits_for_room_within_its_timeout(system: ActorSystem) -> None:
    ref = await system.spawn(Recorder, mailbox_size=1)
    block = Block()
    ref.tell(block)
    await block.entered.wait()
    ref.tell("filler")
    with pytest.raises(AskTimeout):
        await ref.ask("no room", timeout=0.02)
    waiting = asyncio.ensure_future(ref.ask("room later", timeout=2.0))
    await asyncio.sleep(0)
    block.release.set()
    assert await waiting == "room later"


async def test_ask_after_stop_raises_actor_stopped(system: ActorSystem) -> None:
    ref = await system.spawn(Recorder)
    await system.stop(ref)
    with pytest.raises(ActorStopped):
        await ref.ask(Get())
    ref.tell("dead letter, never raises")
    await ref.send("also a dead letter")
    assert system.stats()["totals"]["dead_letters"] == 2


async def test_queued_asks_fail_when_the_actor_stops(system: ActorSystem) -> None:
    ref = await system.spawn(Recorder)
    block = Block()
    running = asyncio.ensure_future(ref.ask(block))
    await block.entered.wait()
    queued = [asyncio.ensure_future(ref.ask(i)) for i in range(3)]
    await asyncio.sleep(0)
    stopping = asyncio.ensure_future(system.stop(ref))
    await asyncio.sleep(0)
    late = asyncio.ensure_future(ref.ask("late"))
    block.release.set()
    await stopping
    assert await running == "released"  # the running handler finishes and answers
    for fut in [*queued, late]:
        with pytest.raises(ActorStopped):
            await fut


async def test_stop_and_ask_race_never_hangs(system: ActorSystem) -> None:
    for _ in range(20):
        ref = await system.spawn(Recorder)
        asks = [asyncio.ensure_future(ref.ask(i, timeout=1.0)) for i in range(10)]
        stop = asyncio.ensure_future(system.stop(ref))
        more = [asyncio.ensure_future(ref.ask(i, timeout=1.0)) for i in range(10)]
        results = await asyncio.gather(*asks, *more, return_exceptions=True)
        await stop
        for result in results:
            assert isinstance(result, int | ActorStopped), result


async def test_cancelled_asker_does_not_break_the_actor(system: ActorSystem) -> None:
    ref = await system.spawn(Recorder)
    block = Block()
    ref.tell(block)
    await block.entered.wait()
    asker = asyncio.ensure_future(ref.ask("abandoned"))
    await asyncio.sleep(0)
    asker.cancel()
    block.release.set()
    assert await ref.ask(Get()) == ["abandoned"]


async def test_sender_is_visible_to_the_handler(system: ActorSystem) -> None:
    class Echo(Actor):
        async def on_receive(self, msg: Any) -> Any:
            if self.sender is not None:
                self.sender.tell(("echo", msg), sender=self.ref)
            return None

    class Probe(Recorder):
        async def on_receive(self, msg: Any) -> Any:
            if msg == "who":
                return self.sender
            if isinstance(msg, Get):
                return list(self.log)
            self.log.append((msg, self.sender))
            return None

    echo = await system.spawn(Echo)
    probe = await system.spawn(Probe)
    echo.tell("hi", sender=probe)
    echo.tell("no sender")  # plain tell: nobody to answer
    await echo.ask("barrier")
    assert await probe.ask(Get()) == [(("echo", "hi"), echo)]
    assert await probe.ask("who", sender=echo) == echo


async def test_refs_compare_by_pid(system: ActorSystem) -> None:
    ref = await system.spawn(Recorder, name="same")
    assert system.lookup("same") == ref
    assert hash(system.lookup(ref.pid)) == hash(ref)
    assert isinstance(ref, ActorRef)
    assert ref.is_local
    assert "same" in repr(ref)


async def test_ref_for_unknown_local_pid_dead_letters(system: ActorSystem) -> None:
    ghost = system.ref_for(f"{system.node}/ghost")
    ghost.tell("hello")
    await ghost.send("hello")
    with pytest.raises(ActorStopped, match="no such actor"):
        await ghost.ask("hello")
    assert system.stats()["totals"]["dead_letters"] == 3


async def test_mailbox_full_is_an_actor_error_subclass() -> None:
    from actors import ActorError

    assert issubclass(MailboxFull, ActorError)
    assert issubclass(AskTimeout, TimeoutError)

from __future__ import annotations

import asyncio
import logging
import re
import time
from typing import Any

import pytest

from actors import PID, SLOW_HANDLER_S, Actor, ActorSystem, Directive, NameTaken, OneForOne
from actors._deadletters import DeadLetters
from tests.actors.helpers import Block, Fail, Get, Lifecycle, Recorder


async def test_names_are_unique_per_node(system: ActorSystem) -> None:
    await system.spawn(Recorder, name="room-1")
    with pytest.raises(NameTaken, match="room-1"):
        await system.spawn(Recorder, name="room-1")


async def test_a_stopped_name_can_be_reused(system: ActorSystem) -> None:
    first = await system.spawn(Recorder, name="p")
    await system.stop(first)
    second = await system.spawn(Recorder, name="p")
    assert second.pid == first.pid
    assert system.lookup("p") is second


async def test_lookup_by_name_pid_and_string(system: ActorSystem) -> None:
    ref = await system.spawn(Recorder, name="player-7")
    assert ref.pid == PID(system.node, "player-7")
    assert system.lookup("player-7") is ref
    assert system.lookup(ref.pid) is ref
    assert system.lookup(str(ref.pid)) is ref
    assert system.lookup("nobody") is None
    assert system.lookup(f"{system.node}/nobody") is None
    assert system.lookup("not a pid/at all") is None
    assert system.lookup(PID("other@10.0.0.1:1", "x")) is None  # no channel layer
    await system.stop(ref)
    assert system.lookup("player-7") is None
    assert system.lookup(ref.pid) is None


async def test_generated_ids_are_short_and_unique(system: ActorSystem) -> None:
    refs = [await system.spawn(Recorder) for _ in range(100)]
    ids = {ref.pid.id for ref in refs}
    assert len(ids) == 100
    assert all(re.fullmatch(r"[0-9a-f]{4}-[0-9a-f]+", i) for i in ids)
    assert all(PID.parse(str(ref.pid)) == ref.pid for ref in refs)


async def test_invalid_spawn_arguments(system: ActorSystem) -> None:
    with pytest.raises(ValueError, match="invalid actor id"):
        await system.spawn(Recorder, name="a/b")
    with pytest.raises(TypeError, match="Actor subclass"):
        await system.spawn(object)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="overflow"):
        await system.spawn(Recorder, overflow="explode")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="invalid node"):
        ActorSystem(node="no-port")


async def test_constructor_receives_args_and_kwargs(system: ActorSystem) -> None:
    class Config(Actor):
        def __init__(self, a: int, *, b: str) -> None:
            self.value = (a, b, self.pid.id)  # context is ready in __init__

        async def on_receive(self, msg: Any) -> Any:
            return self.value

    ref = await system.spawn(Config, 1, b="two", name="cfg")
    assert await ref.ask("?") == (1, "two", "cfg")


async def test_stop_is_idempotent_and_runs_on_stop_once(system: ActorSystem) -> None:
    events: list[str] = []
    ref = await system.spawn(Lifecycle, events)
    await ref.ask(Get())
    await asyncio.gather(system.stop(ref), system.stop(ref))
    await system.stop(ref)
    assert events == ["start", "stop"]


async def test_self_stop_from_a_handler(system: ActorSystem) -> None:
    class Quitter(Recorder):
        async def on_receive(self, msg: Any) -> Any:
            if msg == "quit":
                self.stop()
                return "bye"
            if msg == "quit-via-system":
                await self.system.stop(self.ref)  # must not deadlock
                return "bye"
            return await super().on_receive(msg)

    for command in ("quit", "quit-via-system"):
        ref = await system.spawn(Quitter)
        assert await ref.ask(command) == "bye"
        ref.tell("after")  # dead letter
        await ref._cell.stopped_future()
        assert system.lookup(ref.pid) is None


async def test_shutdown_respects_the_deadline_with_a_slow_on_stop(
    caplog: pytest.LogCaptureFixture,
) -> None:
    events: list[str] = []
    stop_cancelled = asyncio.Event()

    class SlowStop(Actor):
        async def on_receive(self, msg: Any) -> Any:
            return msg

        async def on_stop(self) -> None:
            try:
                await asyncio.sleep(30)
            except asyncio.CancelledError:
                stop_cancelled.set()
                raise

    system = ActorSystem()
    await system.start()
    await system.spawn(SlowStop, name="slow")
    for _ in range(3):
        await system.spawn(Lifecycle, events)
    loop = asyncio.get_running_loop()
    started = loop.time()
    await system.shutdown(timeout=0.2)
    elapsed = loop.time() - started
    assert 0.2 <= elapsed < 1.0
    assert events.count("stop") == 3  # the well-behaved actors stopped normally
    assert stop_cancelled.is_set()
    assert system.stats()["totals"]["actors"] == 0
    assert system.running_tasks() == set()
    assert "did not stop within" in caplog.text
    with pytest.raises(RuntimeError, match="shut down"):
        await system.spawn(Recorder)
    await system.shutdown()  # idempotent


async def test_shutdown_awaits_every_on_stop(system: ActorSystem) -> None:
    stopped: list[str] = []

    class Persisting(Actor):
        def __init__(self, key: str) -> None:
            self.key = key

        async def on_receive(self, msg: Any) -> Any:
            return None

        async def on_stop(self) -> None:
            await asyncio.sleep(0.01)  # e.g. a database write
            stopped.append(self.key)

    for i in range(20):
        await system.spawn(Persisting, str(i))
    await system.shutdown(timeout=5.0)
    assert sorted(stopped, key=int) == [str(i) for i in range(20)]


async def test_shutdown_of_many_idle_actors_needs_no_tasks() -> None:
    system = ActorSystem()
    refs = [await system.spawn(Recorder) for _ in range(1000)]
    await system.shutdown()
    assert all(ref.stopped for ref in refs)


async def test_dead_letters_are_counted(system: ActorSystem) -> None:
    ref = await system.spawn(Recorder)
    await system.stop(ref)
    for i in range(5):
        ref.tell(i)
    system.ref_for(PID(system.node, "never-existed")).tell("x")
    assert system.stats()["totals"]["dead_letters"] == 6


def test_dead_letter_logging_is_rate_limited(caplog: pytest.LogCaptureFixture) -> None:
    letters = DeadLetters()
    with caplog.at_level(logging.INFO, logger="actors.deadletters"):
        for i in range(1000):
            letters.record("somewhere", i, "gone")
    assert letters.count == 1000
    assert len(caplog.records) == 1  # one line per second at most


async def test_stats_shape(system: ActorSystem) -> None:
    ref = await system.spawn(Recorder, name="s1")
    await ref.ask("a")
    with pytest.raises(ValueError, match="fail on purpose"):
        await ref.ask(Fail())
    stats = system.stats()
    assert set(stats) == {"actors", "totals"}
    assert stats["actors"] == {
        str(ref.pid): {"mailbox": 0, "processed": 2, "failed": 1, "restarts": 1}
    }
    totals = stats["totals"]
    for key in (
        "actors",
        "processed",
        "failed",
        "restarts",
        "dead_letters",
        "mailbox_rejected",
        "mailbox_dropped",
    ):
        assert isinstance(totals[key], int), key
    assert (totals["actors"], totals["processed"], totals["failed"]) == (1, 2, 1)
    await system.stop(ref)
    totals = system.stats()["totals"]
    assert (totals["actors"], totals["processed"], totals["restarts"]) == (0, 2, 1)


async def test_mailbox_depth_is_reported(system: ActorSystem) -> None:
    ref = await system.spawn(Recorder)
    block = Block()
    ref.tell(block)
    await block.entered.wait()
    for i in range(3):
        ref.tell(i)
    assert system.stats()["actors"][str(ref.pid)]["mailbox"] == 3
    block.release.set()
    await ref.ask(Get())


async def test_slow_handler_watchdog_logs_pid_and_type(
    system: ActorSystem, caplog: pytest.LogCaptureFixture
) -> None:
    class Hog(Actor):
        async def on_receive(self, msg: Any) -> Any:
            time.sleep(SLOW_HANDLER_S * 1.5)  # deliberately blocks the loop
            return None

    ref = await system.spawn(Hog, name="hog")
    with caplog.at_level(logging.WARNING, logger="actors"):
        await ref.ask(3.5)
    slow = [r.getMessage() for r in caplog.records if "slow handler" in r.getMessage()]
    assert len(slow) == 1
    assert str(ref.pid) in slow[0]
    assert "float" in slow[0]
    assert system.stats()["totals"]["slow_handlers"] == 1


async def test_a_failing_actor_does_not_disturb_others(system: ActorSystem) -> None:
    resume = OneForOne(decider=lambda exc: Directive.RESUME)
    bad = await system.spawn(Recorder, supervisor=resume)
    good = await system.spawn(Recorder)
    for i in range(50):
        bad.tell(Fail())
        good.tell(i)
    assert await good.ask(Get()) == list(range(50))
    assert system.stats()["totals"]["failed"] == 50


async def test_context_manager_and_repr() -> None:
    async with ActorSystem(node="n@h:1") as system:
        await system.spawn(Recorder)
        assert "n@h:1" in repr(system)
    assert system.stats()["totals"]["actors"] == 0

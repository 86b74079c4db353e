"""Eager messages (``Actor.eager_messages``): handled in the teller's call when idle."""

from __future__ import annotations

import asyncio
from typing import Any

from actors import Actor, ActorSystem, Directive, OneForOne
from actors._cell import ActorCell
from tests.actors.helpers import Get


class Beat:
    """The eager message type of these tests."""

    def __init__(self, n: int, wait: asyncio.Event | None = None, fail: bool = False) -> None:
        self.n = n
        self.wait = wait
        self.fail = fail


class Beats(Actor):
    eager_messages = (Beat,)

    def __init__(self, log: list[Any], events: list[str] | None = None) -> None:
        self.log = log
        self.events = events if events is not None else []

    async def on_start(self) -> None:
        self.events.append("start")

    async def on_failure(self, exc: BaseException, msg: Any) -> None:
        self.events.append(f"failure {type(msg).__name__} {exc}")

    async def on_receive(self, msg: Any) -> Any:
        if isinstance(msg, Get):
            return list(self.log)
        if isinstance(msg, Beat):
            if msg.fail:
                raise ValueError(f"beat {msg.n} failed")
            if msg.wait is not None:
                self.log.append(f"waiting {msg.n}")
                await msg.wait.wait()
            self.log.append(msg.n)
            if msg.n == 100:
                self.ref.tell(Beat(101))  # told while it runs: queued behind it
            return None
        self.log.append(msg)
        return None


async def _started(system: ActorSystem, *args: Any, **kwargs: Any) -> Any:
    ref = await system.spawn(Beats, *args, **kwargs)
    await ref.ask(Get())  # on_start has run: the actor is idle
    return ref


def _cell(system: ActorSystem, ref: Any) -> ActorCell:
    cell = system._local_cell(ref)
    assert cell is not None
    return cell


async def test_an_idle_actor_handles_an_eager_message_within_tell(system: ActorSystem) -> None:
    log: list[Any] = []
    ref = await _started(system, log)
    ref.tell(Beat(1))
    assert log == [1]  # before tell returned, without yielding to the loop
    assert _cell(system, ref).task is None  # and without a task
    ref.tell(Beat(2))
    assert log == [1, 2]
    assert _cell(system, ref).stats()["processed"] == 3  # the Get and both beats


async def test_other_messages_and_asks_still_queue(system: ActorSystem) -> None:
    log: list[Any] = []
    ref = await _started(system, log)
    ref.tell("plain")
    assert log == []  # not an eager type: handled by the drain task later
    assert await ref.ask(Beat(7)) is None  # an ask is never eager: it needs its future
    assert log == ["plain", 7]


async def test_an_eager_message_to_a_busy_actor_waits_its_turn(system: ActorSystem) -> None:
    log: list[Any] = []
    ref = await _started(system, log)
    release = asyncio.Event()
    ref.tell(Beat(1, wait=release))  # starts eagerly, then waits: the actor is busy
    assert log == ["waiting 1"]
    ref.tell(Beat(2))  # queued behind it, not run alongside it
    ref.tell("plain")
    assert log == ["waiting 1"]
    release.set()
    assert await ref.ask(Get()) == ["waiting 1", 1, 2, "plain"]


async def test_a_queued_message_keeps_an_eager_one_out(system: ActorSystem) -> None:
    log: list[Any] = []
    ref = await _started(system, log)
    ref.tell("first")
    ref.tell(Beat(1))  # the mailbox is not empty: the order of telling is kept
    assert log == []
    assert await ref.ask(Get()) == ["first", 1]


async def test_a_message_told_during_an_eager_handler_runs_after_it(
    system: ActorSystem,
) -> None:
    log: list[Any] = []
    ref = await _started(system, log)
    ref.tell(Beat(100))
    assert log == [100]
    assert await ref.ask(Get()) == [100, 101]


async def test_an_eager_handler_that_waits_is_taken_over_by_a_task_and_cancelled_at_shutdown(
    system: ActorSystem,
) -> None:
    log: list[Any] = []
    ref = await _started(system, log)
    never = asyncio.Event()
    ref.tell(Beat(1, wait=never))
    cell = _cell(system, ref)
    task = cell.task
    assert task is not None  # the drain task took the handler over
    assert not task.done()
    await system.shutdown(timeout=0.2)  # on_stop cannot run: the handler never ends
    assert task.done()
    assert cell.stopped
    assert log == ["waiting 1"]


async def test_an_eager_handler_failure_goes_to_the_supervisor(system: ActorSystem) -> None:
    log: list[Any] = []
    events: list[str] = []
    decided: list[BaseException] = []

    def decider(exc: BaseException) -> Directive:
        decided.append(exc)
        return Directive.RESTART

    ref = await _started(system, log, events, supervisor=OneForOne(backoff=(0, 0), decider=decider))
    ref.tell(Beat(1, fail=True))  # no exception reaches the teller
    ref.tell(Beat(2))  # queued: the failure is handled first
    assert await ref.ask(Get()) == [2]
    assert [str(exc) for exc in decided] == ["beat 1 failed"]
    assert events == ["start", "failure Beat beat 1 failed", "start"]
    assert _cell(system, ref).stats()["failed"] == 1

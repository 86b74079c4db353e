from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import Any

import pytest

from actors import (
    Actor,
    ActorStopped,
    ActorSystem,
    Directive,
    LocalActorRef,
    OneForOne,
    Terminated,
)
from tests.actors.helpers import Fail, Get, Lifecycle, Recorder


def always(directive: Directive) -> OneForOne:
    return OneForOne(backoff=(0, 0), decider=lambda exc: directive)


# -- pure strategy logic ----------------------------------------------------------------------


def test_backoff_grows_exponentially_to_the_cap() -> None:
    strategy = OneForOne(backoff=(0.1, 1.0))
    delays = [strategy.backoff_delay(n) for n in range(1, 8)]
    assert delays == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.0, 1.0, 1.0])
    assert strategy.backoff_delay(10_000) == 1.0  # no float overflow
    assert OneForOne(backoff=(0, 0)).backoff_delay(5) == 0


def test_restart_budget_is_a_sliding_window() -> None:
    strategy = OneForOne(max_restarts=3, within_s=10)
    history: deque[float] = deque()
    assert [strategy.allow_restart(history, t) for t in (0, 1, 2)] == [True, True, True]
    assert not strategy.allow_restart(history, 3)  # 4th failure inside the window
    assert strategy.allow_restart(history, 10.5)  # the first restart left the window


@pytest.mark.parametrize(
    "kwargs",
    [{"max_restarts": -1}, {"within_s": 0}, {"backoff": (1.0, 0.5)}, {"backoff": (-1, 1)}],
)
def test_strategy_validates_arguments(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - any clear ValueError will do
        OneForOne(**kwargs)


# -- directives ---------------------------------------------------------------------------------


async def test_resume_drops_the_message_and_keeps_state(system: ActorSystem) -> None:
    events: list[str] = []
    ref = await system.spawn(Lifecycle, events, supervisor=always(Directive.RESUME))
    ref.tell("a")
    ref.tell(Fail())
    ref.tell("b")
    assert await ref.ask(Get()) == ["a", "b"]
    assert events == ["start", "failure:ValueError"]
    assert system.stats()["actors"][str(ref.pid)]["restarts"] == 0


async def test_restart_builds_a_fresh_instance_and_keeps_the_mailbox(system: ActorSystem) -> None:
    events: list[str] = []
    shared: list[Any] = []
    ref = await system.spawn(Lifecycle, events, log=shared, supervisor=always(Directive.RESTART))
    first = ref._cell._actor
    ref.tell("a")
    ref.tell(Fail())
    ref.tell("b")
    ref.tell("c")
    # Same constructor arguments (the shared list) and the queued messages minus the failing one.
    assert await ref.ask(Get()) == ["a", "b", "c"]
    assert ref._cell._actor is not first
    # on_start ran again; on_stop was NOT called on the failed instance.
    assert events == ["start", "failure:ValueError", "start"]


async def test_stop_directive_runs_on_stop(system: ActorSystem) -> None:
    events: list[str] = []
    ref = await system.spawn(Lifecycle, events, supervisor=always(Directive.STOP))
    ref.tell(Fail())
    ref.tell("never handled")
    await ref._cell.stopped_future()
    assert events == ["start", "failure:ValueError", "stop"]
    assert system.lookup(ref.pid) is None
    with pytest.raises(ActorStopped):
        await ref.ask(Get())


async def test_escalate_to_the_root_guardian_stops_the_actor(
    system: ActorSystem, caplog: pytest.LogCaptureFixture
) -> None:
    events: list[str] = []
    ref = await system.spawn(Lifecycle, events, supervisor=always(Directive.ESCALATE))
    with pytest.raises(ValueError, match="fail on purpose"):
        await ref.ask(Fail())
    await ref._cell.stopped_future()
    assert events == ["start", "failure:ValueError", "stop"]
    assert "root guardian" in caplog.text


class Parent(Actor):
    """Spawns one child in on_start; records Terminated notices and its own failures."""

    def __init__(self, child_supervisor: OneForOne, events: list[Any]) -> None:
        self.child_supervisor = child_supervisor
        self.events = events
        self.child: LocalActorRef | None = None

    async def on_start(self) -> None:
        self.events.append("parent-start")
        self.child = await self.spawn(
            Lifecycle, self.events, name="child", supervisor=self.child_supervisor
        )

    async def on_receive(self, msg: Any) -> Any:
        if msg == "child":
            return self.child
        self.events.append(msg)
        return None

    async def on_failure(self, exc: BaseException, msg: Any) -> None:
        self.events.append(f"parent-failure:{type(exc).__name__}")

    async def on_stop(self) -> None:
        self.events.append("parent-stop")


async def test_max_restarts_three_then_fourth_failure_stops_and_tells_the_parent(
    system: ActorSystem,
) -> None:
    events: list[Any] = []
    strategy = OneForOne(max_restarts=3, within_s=60, backoff=(0, 0))
    parent = await system.spawn(Parent, strategy, events, name="parent")
    child = await parent.ask("child")
    for attempt in range(3):
        with pytest.raises(ValueError, match="fail on purpose"):
            await child.ask(Fail())
        assert await child.ask("alive") == "alive", attempt
    assert system.stats()["actors"][str(child.pid)]["restarts"] == 3
    with pytest.raises(ValueError, match="fail on purpose"):
        await child.ask(Fail())  # the fourth failure
    await child._cell.stopped_future()
    assert system.lookup("child") is None
    await parent.ask("barrier")
    notices = [e for e in events if isinstance(e, Terminated)]
    assert len(notices) == 1
    assert notices[0].pid == child.pid
    assert isinstance(notices[0].reason, ValueError)
    assert events.count("stop") == 1  # the child's on_stop ran once, at the final stop


async def test_escalate_fails_the_parent_which_restarts_and_respawns(system: ActorSystem) -> None:
    events: list[Any] = []
    parent = await system.spawn(Parent, always(Directive.ESCALATE), events, name="parent")
    first_child = await parent.ask("child")
    first_child.tell(Fail(RuntimeError("child broke")))
    await first_child._cell.stopped_future()
    # The parent's own supervisor (default RESTART, no backoff in tests) restarted it, and
    # its on_start spawned a new child under the same name.
    second_child = await parent.ask("child")
    assert second_child._cell is not first_child._cell
    assert system.lookup("child") == second_child
    assert "parent-failure:RuntimeError" in events
    assert not [e for e in events if isinstance(e, Terminated)]
    assert system.stats()["actors"][str(parent.pid)]["restarts"] == 1


async def test_parent_stop_stops_children_first(system: ActorSystem) -> None:
    events: list[Any] = []
    parent = await system.spawn(Parent, always(Directive.RESTART), events)
    child = await parent.ask("child")
    await system.stop(parent)
    assert child.stopped
    assert events.index("stop") < events.index("parent-stop")
    assert not [e for e in events if isinstance(e, Terminated)]


async def test_parent_is_told_when_a_child_stops_normally(system: ActorSystem) -> None:
    events: list[Any] = []
    parent = await system.spawn(Parent, always(Directive.RESTART), events)
    child = await parent.ask("child")
    await system.stop(child)
    await parent.ask("barrier")
    assert Terminated(child.pid, None) in events


async def test_backoff_delays_the_restart_without_blocking_others(system: ActorSystem) -> None:
    loop = asyncio.get_running_loop()
    ref = await system.spawn(Recorder, supervisor=OneForOne(backoff=(0.05, 1.0)))
    other = await system.spawn(Recorder)
    failed_at = loop.time()
    ref.tell(Fail())
    ref.tell("after")
    assert await other.ask("meanwhile") == "meanwhile"  # other actors keep going
    assert loop.time() - failed_at < 0.05
    assert await ref.ask(Get()) == ["after"]
    assert loop.time() - failed_at >= 0.05


async def test_consecutive_failures_grow_the_backoff(system: ActorSystem) -> None:
    streaks: list[int] = []

    class Streak(Recorder):
        async def on_failure(self, exc: BaseException, msg: Any) -> None:
            streaks.append(self._cell._consecutive)

    loop = asyncio.get_running_loop()
    strategy = OneForOne(backoff=(0.01, 1.0))
    ref = await system.spawn(Streak, supervisor=strategy)
    started = loop.time()
    for _ in range(3):
        ref.tell(Fail())
    assert await ref.ask(Get()) == []
    # Restart delays 0.01 + 0.02 + 0.04: each consecutive failure doubles the wait.
    assert loop.time() - started >= 0.07
    ref.tell(Fail())
    await ref.ask(Get())
    assert streaks == [1, 2, 3, 1]  # the successful Get reset the streak


async def test_on_start_failure_counts_as_failure(system: ActorSystem) -> None:
    class FlakyStart(Recorder):
        starts = 0

        async def on_start(self) -> None:
            type(self).starts += 1
            if type(self).starts == 1:
                raise OSError("db not ready")

    ref = await system.spawn(FlakyStart)
    assert await ref.ask("up") == "up"
    stats = system.stats()["actors"][str(ref.pid)]
    assert (stats["failed"], stats["restarts"]) == (1, 1)
    assert FlakyStart.starts == 2


async def test_on_start_failing_forever_exhausts_the_budget(system: ActorSystem) -> None:
    class NeverStarts(Recorder):
        async def on_start(self) -> None:
            raise OSError("never")

    ref = await system.spawn(NeverStarts, supervisor=OneForOne(max_restarts=2, backoff=(0, 0)))
    await ref._cell.stopped_future()
    assert system.stats()["totals"]["failed"] == 3


async def test_constructor_errors_propagate_from_spawn(system: ActorSystem) -> None:
    class Broken(Actor):
        def __init__(self) -> None:
            raise TypeError("bad args")

    with pytest.raises(TypeError, match="bad args"):
        await system.spawn(Broken, name="broken")
    assert system.lookup("broken") is None


async def test_on_stop_exception_is_logged_and_the_actor_still_stops(
    system: ActorSystem, caplog: pytest.LogCaptureFixture
) -> None:
    class BadStop(Recorder):
        async def on_stop(self) -> None:
            raise RuntimeError("cleanup failed")

    ref = await system.spawn(BadStop)
    await system.stop(ref)
    assert ref.stopped
    assert "on_stop raised" in caplog.text
    assert "cleanup failed" in caplog.text


async def test_decider_and_hook_errors_are_contained(system: ActorSystem) -> None:
    def bad_decider(exc: BaseException) -> Directive:
        raise LookupError("decider bug")

    class BadHook(Recorder):
        async def on_failure(self, exc: BaseException, msg: Any) -> None:
            raise RuntimeError("hook bug")

    ref = await system.spawn(BadHook, supervisor=OneForOne(decider=bad_decider))
    other = await system.spawn(Recorder)
    ref.tell(Fail())
    await ref._cell.stopped_future()  # a broken decider means STOP
    assert await other.ask("fine") == "fine"


async def test_failure_is_logged_once_with_traceback_pid_and_type(
    system: ActorSystem, caplog: pytest.LogCaptureFixture
) -> None:
    ref = await system.spawn(Recorder, name="logged")
    with (
        caplog.at_level(logging.ERROR, logger="actors"),
        pytest.raises(ValueError, match="fail on purpose"),
    ):
        await ref.ask(Fail())
    failures = [r for r in caplog.records if "failed in on_receive" in r.getMessage()]
    assert len(failures) == 1
    record = failures[0]
    assert str(ref.pid) in record.getMessage()
    assert "Fail" in record.getMessage()
    assert record.exc_info is not None


async def test_decider_picks_per_exception_type(system: ActorSystem) -> None:
    def decider(exc: BaseException) -> Directive:
        return Directive.RESUME if isinstance(exc, KeyError) else Directive.STOP

    ref = await system.spawn(Recorder, supervisor=OneForOne(decider=decider))
    ref.tell("a")
    ref.tell(Fail(KeyError("resume me")))
    assert await ref.ask(Get()) == ["a"]
    ref.tell(Fail(RuntimeError("stop me")))
    await ref._cell.stopped_future()

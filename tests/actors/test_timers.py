from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from actors import Actor, ActorSystem, Timer
from tests.actors.helpers import Block

# Generous guard so a broken timer fails the test instead of hanging it.
WAIT_S = 2.0


class Ticker(Actor):
    """Schedules timers on command; every other message is pushed to `out` with its time."""

    def __init__(self, out: asyncio.Queue[tuple[Any, float]], work_s: float = 0.0) -> None:
        self.out = out
        self.work_s = work_s

    async def on_receive(self, msg: Any) -> Any:
        match msg:
            case ("every", interval, tag):
                return self.schedule_every(interval, tag)
            case ("once", delay, tag):
                return self.schedule_once(delay, tag)
            case Block():
                msg.entered.set()
                await msg.release.wait()
                return None
        self.out.put_nowait((msg, asyncio.get_running_loop().time()))
        if self.work_s:
            time.sleep(self.work_s)  # a slow handler: must not make a fixed-rate timer drift
        return None


async def next_tick(out: asyncio.Queue[tuple[Any, float]]) -> tuple[Any, float]:
    return await asyncio.wait_for(out.get(), WAIT_S)


async def test_schedule_once_delivers_after_the_delay(system: ActorSystem) -> None:
    out: asyncio.Queue[tuple[Any, float]] = asyncio.Queue()
    ref = await system.spawn(Ticker, out)
    loop = asyncio.get_running_loop()
    before = loop.time()
    timer: Timer = await ref.ask(("once", 0.03, "ding"))
    msg, at = await next_tick(out)
    assert msg == "ding"
    assert at - before >= 0.03
    assert timer.when is None  # finished
    assert ref._cell._timers is None  # a fired one-shot timer is forgotten


async def test_schedule_every_is_fixed_rate_without_drift(system: ActorSystem) -> None:
    out: asyncio.Queue[tuple[Any, float]] = asyncio.Queue()
    interval = 0.02
    # Each handler burns 60% of the interval: a call_later(interval)-after-handling timer
    # would slip by >= 12 ms per tick, i.e. > 100 ms after 10 ticks.
    ref = await system.spawn(Ticker, out, work_s=interval * 0.6)
    timer: Timer = await ref.ask(("every", interval, "tick"))
    first_due = timer.when
    assert first_due is not None
    arrivals = [(await next_tick(out))[1] for _ in range(10)]
    timer.cancel()
    for n, at in enumerate(arrivals):
        due = first_due + n * interval
        assert at >= due - 0.002  # never early (allowing clock granularity)
        assert at - due < interval, f"tick {n} drifted by {at - due:.3f}s"


async def test_every_schedules_on_a_fixed_grid(system: ActorSystem) -> None:
    out: asyncio.Queue[tuple[Any, float]] = asyncio.Queue()
    ref = await system.spawn(Ticker, out)
    interval = 0.01
    timer: Timer = await ref.ask(("every", interval, "tick"))
    origin = timer.when
    assert origin is not None
    for n in range(1, 6):
        await next_tick(out)
        # The next deadline is computed from the origin, never from "now".
        assert timer.when == pytest.approx(origin + n * interval, abs=1e-9)
    timer.cancel()


async def test_every_skips_ticks_missed_while_the_loop_was_blocked(system: ActorSystem) -> None:
    out: asyncio.Queue[tuple[Any, float]] = asyncio.Queue()
    ref = await system.spawn(Ticker, out)
    interval = 0.01
    timer: Timer = await ref.ask(("every", interval, "tick"))
    origin = timer.when
    assert origin is not None
    await next_tick(out)
    time.sleep(interval * 3.5)  # block the whole loop
    await next_tick(out)  # the overdue tick, delivered once
    await next_tick(out)
    assert out.empty()  # no burst of missed ticks
    when = timer.when
    assert when is not None
    steps = (when - origin) / interval
    assert steps == pytest.approx(round(steps), abs=1e-6)  # still on the original grid
    timer.cancel()


async def test_cancel_prevents_delivery(system: ActorSystem) -> None:
    out: asyncio.Queue[tuple[Any, float]] = asyncio.Queue()
    ref = await system.spawn(Ticker, out)
    cancelled: Timer = await ref.ask(("once", 0.01, "cancelled"))
    every: Timer = await ref.ask(("every", 0.01, "cancelled-every"))
    cancelled.cancel()
    every.cancel()
    cancelled.cancel()  # idempotent
    assert cancelled.cancelled
    await ref.ask(("once", 0.04, "marker"))
    msg, _ = await next_tick(out)
    assert msg == "marker"  # nothing else arrived first
    assert out.empty()


async def test_timers_are_cancelled_on_stop(system: ActorSystem) -> None:
    out: asyncio.Queue[tuple[Any, float]] = asyncio.Queue()
    ref = await system.spawn(Ticker, out)
    once: Timer = await ref.ask(("once", 0.01, "late"))
    every: Timer = await ref.ask(("every", 0.01, "late-every"))
    await system.stop(ref)
    assert once.cancelled
    assert every.cancelled
    assert once.when is None
    assert every.when is None
    assert system.stats()["totals"]["dead_letters"] == 0


async def test_timer_into_a_full_mailbox_is_counted(system: ActorSystem) -> None:
    out: asyncio.Queue[tuple[Any, float]] = asyncio.Queue()
    ref = await system.spawn(Ticker, out, mailbox_size=1)
    block = Block()
    ref.tell(block)
    await block.entered.wait()
    ref.tell("filler")
    fired = asyncio.Event()
    loop = asyncio.get_running_loop()
    ref._cell.schedule(0.0, "overflow", None)
    loop.call_later(0.01, fired.set)
    await fired.wait()
    assert system.stats()["totals"]["timers_dropped"] == 1
    block.release.set()
    msg, _ = await next_tick(out)
    assert msg == "filler"


async def test_every_rejects_a_non_positive_interval(system: ActorSystem) -> None:
    class Bad(Actor):
        async def on_receive(self, msg: Any) -> Any:
            return self.schedule_every(0, "x")

    ref = await system.spawn(Bad)
    with pytest.raises(ValueError, match="interval"):
        await ref.ask("go")

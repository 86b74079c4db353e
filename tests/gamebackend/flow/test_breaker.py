"""Circuit breakers driven by a ManualClock (no sleeps)."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import pytest

from gamebackend.flow.breaker import (
    Breaker,
    BreakerRegistry,
    BreakerRule,
    CircuitOpen,
    State,
    Strategy,
    default_rule,
)
from gamebackend.flow.breaker_rules import (
    MAX_COUNT,
    MAX_RT_MS,
    MAX_RULE_OPEN_S,
    MAX_STAT_WINDOW_S,
)
from gamebackend.flow.bucket import RuleError
from gamebackend.flow.clock import ManualClock


class Boom(Exception):
    pass


def brule(**overrides: object) -> BreakerRule:
    fields: dict[str, object] = {
        "resource": "svc.payments", "strategy": "error_ratio", "threshold": 0.5,
        "min_requests": 10, "stat_window_s": 10, "open_s": 5,
    }  # fmt: skip
    fields.update(overrides)
    return BreakerRule(**fields)  # type: ignore[arg-type]


def ok() -> str:
    return "ok"


def fail() -> str:
    raise Boom


def run(breaker: Breaker, outcomes: str) -> None:
    """Drive calls: '.' success, 'x' failure (CircuitOpen is left to propagate)."""
    for outcome in outcomes:
        with contextlib.suppress(Boom):
            breaker.call_sync(ok if outcome == "." else fail)


def make(clock: ManualClock, **overrides: object) -> Breaker:
    return BreakerRegistry([brule(**overrides)], clock=clock).breaker("svc.payments")


# -- rules ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"strategy": "coin_flip"}, "strategy"),
        ({"threshold": 0}, "threshold"),
        ({"threshold": 1.5}, "threshold"),
        ({"strategy": "error_count", "threshold": 2.5}, "threshold"),
        ({"strategy": "error_count", "threshold": 0}, "threshold"),
        ({"strategy": "slow_ratio"}, "max_rt_ms"),
        ({"min_requests": 0}, "min_requests"),
        ({"stat_window_s": 0}, "stat_window_s"),
        ({"open_s": -1}, "open_s"),
        ({"half_open_probe_ratio": 0}, "half_open_probe_ratio"),
        ({"half_open_probe_ratio": 1.01}, "half_open_probe_ratio"),
        ({"half_open_successes": 0}, "half_open_successes"),
        ({"resource": ""}, "resource"),
        ({"enabled": 1}, "enabled"),
    ],
)
def test_rule_validation(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(RuleError, match=message):
        brule(**overrides)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        # Issue 12: no field had an upper bound (a breaker that can never trip or recover).
        ({"strategy": "error_count", "threshold": 1e300}, r"threshold must be in \[1, 1,000,000\]"),
        ({"strategy": "error_count", "threshold": MAX_COUNT + 1}, "threshold"),
        ({"min_requests": 1e300}, "min_requests must be in"),
        ({"min_requests": MAX_COUNT + 1}, "min_requests"),
        ({"stat_window_s": 1e300}, r"stat_window_s must be in \[0.1, 3,600\]"),
        ({"stat_window_s": 0.01}, "stat_window_s"),
        ({"strategy": "slow_ratio", "max_rt_ms": 1e300}, "max_rt_ms must be in"),
        ({"max_rt_ms": MAX_RT_MS + 1}, "max_rt_ms"),
        ({"open_s": 1e300}, r"open_s must be in \[0.1, 3,600\]"),
        ({"open_s": MAX_RULE_OPEN_S + 1}, "open_s"),
        ({"half_open_successes": MAX_COUNT + 1}, "half_open_successes"),
        ({"min_requests": float("inf")}, "min_requests"),
    ],
)
def test_rule_numbers_have_upper_bounds(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(RuleError, match=message):
        brule(**overrides)


def test_rule_bounds_themselves_are_accepted() -> None:
    rule = brule(
        strategy="error_count", threshold=MAX_COUNT, min_requests=MAX_COUNT,
        stat_window_s=MAX_STAT_WINDOW_S, max_rt_ms=MAX_RT_MS, open_s=MAX_RULE_OPEN_S,
        half_open_successes=MAX_COUNT,
    )  # fmt: skip
    assert (rule.threshold, rule.open_s, rule.stat_window_s) == (
        MAX_COUNT, MAX_RULE_OPEN_S, MAX_STAT_WINDOW_S,
    )  # fmt: skip


def test_rule_defaults_and_enum_coercion() -> None:
    r = brule(strategy="error_count", threshold=3)
    assert r.strategy is Strategy.ERROR_COUNT
    assert r.threshold == 3.0
    assert r.half_open_probe_ratio == 0.05
    assert brule(half_open_probe_ratio=1).half_open_probe_ratio == 1.0


def test_unknown_names_get_the_permissive_default() -> None:
    clock = ManualClock()
    registry = BreakerRegistry(clock=clock)
    breaker = registry.breaker("svc.unknown")
    assert breaker.rule == default_rule("svc.unknown")
    assert breaker.rule.threshold == 1.0
    run(breaker, "x" * 19 + ".")  # one success in 20: stays closed
    assert breaker.state is State.CLOSED
    run(breaker, "x" * 20)  # 39 failures out of 40 in the window: still not all
    assert breaker.state is State.CLOSED
    clock.advance(11)
    run(breaker, "x" * 20)  # the dependency is down: every call fails
    assert breaker.state is State.OPEN


# -- strategies ----------------------------------------------------------------------------


def test_error_ratio_trips_at_the_threshold_after_min_requests() -> None:
    clock = ManualClock()
    breaker = make(clock)
    run(breaker, "x" * 9)  # 100% errors but fewer than min_requests
    assert breaker.state is State.CLOSED
    run(breaker, "x")
    assert breaker.state is State.OPEN
    with pytest.raises(CircuitOpen) as info:
        breaker.call_sync(ok)
    assert info.value.retry_after_ms == 5000
    assert info.value.state is State.OPEN
    clock.advance(2)
    with pytest.raises(CircuitOpen) as info:
        breaker.call_sync(ok)
    assert info.value.retry_after_ms == 3000


def test_error_ratio_below_threshold_stays_closed() -> None:
    breaker = make(ManualClock())
    run(breaker, "..x.x.x..x.x" * 5)  # 5/12 failing
    assert breaker.state is State.CLOSED
    snap = breaker.snapshot()
    assert snap["window"] == {"total": 60, "errors": 25, "slow": 0}
    assert snap["error_ratio"] == pytest.approx(25 / 60)


def test_error_count_trips_on_the_count_whatever_the_ratio() -> None:
    breaker = make(ManualClock(), strategy="error_count", threshold=3, min_requests=1)
    run(breaker, "." * 100 + "x.x")
    assert breaker.state is State.CLOSED
    run(breaker, "." * 50 + "x")
    assert breaker.state is State.OPEN
    assert "error_count 3 >= 3" in breaker.snapshot()["last_transition"]["reason"]


def test_slow_ratio_counts_calls_slower_than_max_rt() -> None:
    clock = ManualClock()
    breaker = make(clock, strategy="slow_ratio", threshold=0.5, min_requests=4, max_rt_ms=100)

    def slow() -> None:
        clock.advance(0.2)

    def fast() -> None:
        clock.advance(0.05)

    for fn in (slow, fast, slow, fast, fast):
        breaker.call_sync(fn)
    assert breaker.state is State.CLOSED  # 2/5 slow
    run(breaker, "xxxx")  # failures are not slow: errors do not count for slow_ratio
    assert breaker.state is State.CLOSED
    for _ in range(5):
        breaker.call_sync(slow)
    assert breaker.state is State.OPEN  # 7/14 slow
    assert breaker.snapshot()["counters"]["slow"] == 7


def test_sliding_window_forgets_old_failures() -> None:
    clock = ManualClock(100.0)
    breaker = make(clock, strategy="error_count", threshold=5, min_requests=1)
    run(breaker, "xxxx")
    clock.advance(10.5)  # past the whole window
    run(breaker, "xxxx")
    assert breaker.state is State.CLOSED
    assert breaker.snapshot()["window"]["errors"] == 4
    # Within the window the old failures still count.
    clock.advance(5)
    run(breaker, "x")
    assert breaker.state is State.OPEN


def test_sliding_window_moves_bucket_by_bucket() -> None:
    clock = ManualClock(0.0)
    breaker = make(clock, strategy="error_count", threshold=100, min_requests=1)
    for _ in range(10):  # one failure per 1 s bucket
        run(breaker, "x")
        clock.advance(1.0)
    assert breaker.snapshot()["window"]["errors"] == 9  # the first bucket just expired
    clock.advance(5.0)
    assert breaker.snapshot()["window"]["errors"] == 4


# -- half-open -----------------------------------------------------------------------------


def trip(breaker: Breaker) -> None:
    run(breaker, "x" * 10)
    assert breaker.state is State.OPEN


def test_half_open_probe_share_over_ten_thousand_calls() -> None:
    clock = ManualClock()
    breaker = make(clock, half_open_probe_ratio=0.05, half_open_successes=1_000_000)
    trip(breaker)
    clock.advance(5)
    let_through = 0
    states = set()
    for _ in range(10_000):
        try:
            breaker.call_sync(ok)
            let_through += 1
        except CircuitOpen as exc:
            states.add(exc.state)
    assert states == {State.HALF_OPEN}
    assert breaker.state is State.HALF_OPEN
    assert abs(let_through / 10_000 - 0.05) <= 0.02
    assert let_through == 500  # counter-based: exactly every 20th call
    assert breaker.snapshot()["half_open"]["probes"] == let_through


@pytest.mark.parametrize("ratio", [0.01, 0.3, 0.77, 1.0])
def test_half_open_probe_share_follows_the_ratio(ratio: float) -> None:
    clock = ManualClock()
    breaker = make(clock, half_open_probe_ratio=ratio, half_open_successes=1_000_000)
    trip(breaker)
    clock.advance(5)
    through = 0
    for _ in range(10_000):
        try:
            breaker.call_sync(ok)
            through += 1
        except CircuitOpen:
            pass
    assert abs(through / 10_000 - ratio) <= 0.02


def test_probe_successes_close_the_breaker() -> None:
    clock = ManualClock()
    breaker = make(clock, half_open_probe_ratio=0.5, half_open_successes=3)
    trip(breaker)
    clock.advance(5)
    outcomes = []
    for _ in range(6):
        try:
            breaker.call_sync(ok)
            outcomes.append("probe")
        except CircuitOpen:
            outcomes.append("rejected")
    # The first call after open_s is always a probe; then every second call.
    assert outcomes == ["probe", "rejected", "probe", "rejected", "probe", "probe"]
    assert breaker.state is State.CLOSED  # after the third probe; then calls pass
    assert breaker.snapshot()["window"]["total"] == 1  # a fresh window
    counters = breaker.snapshot()["counters"]
    assert (counters["opened"], counters["half_opened"], counters["closed"]) == (1, 1, 1)


def test_failed_probe_doubles_open_time_up_to_the_cap() -> None:
    clock = ManualClock()
    breaker = make(clock, open_s=10, half_open_probe_ratio=1.0)
    trip(breaker)
    seen = []
    for _ in range(7):
        seen.append(breaker.snapshot()["open_s"])
        clock.advance(breaker.snapshot()["open_s"])
        run(breaker, "x")  # the probe fails
        assert breaker.state is State.OPEN
    assert seen == [10, 20, 40, 80, 160, 160, 160]  # 16 x open_s
    # A success path closes and resets the open time.
    clock.advance(160)
    for _ in range(3):
        breaker.call_sync(ok)
    assert breaker.state is State.CLOSED
    trip(breaker)
    assert breaker.snapshot()["open_s"] == 10


def test_open_time_cap_is_at_most_300_s() -> None:
    clock = ManualClock()
    breaker = make(clock, open_s=30, half_open_probe_ratio=1.0)
    trip(breaker)
    seen = []
    for _ in range(6):
        seen.append(breaker.snapshot()["open_s"])
        clock.advance(seen[-1])
        run(breaker, "x")
    assert seen == [30, 60, 120, 240, 300, 300]


def test_slow_probe_counts_as_failed_for_slow_ratio() -> None:
    clock = ManualClock()
    breaker = make(clock, strategy="slow_ratio", threshold=0.5, min_requests=2, max_rt_ms=100,
                   half_open_probe_ratio=1.0)  # fmt: skip

    def slow() -> None:
        clock.advance(0.5)

    breaker.call_sync(slow)
    breaker.call_sync(slow)
    assert breaker.state is State.OPEN
    clock.advance(5)
    breaker.call_sync(slow)
    assert breaker.state is State.OPEN
    assert breaker.snapshot()["last_transition"]["reason"] == "probe slow"
    assert breaker.snapshot()["open_s"] == 10


def test_stale_probe_outcomes_are_ignored() -> None:
    clock = ManualClock()
    breaker = make(clock, half_open_probe_ratio=1.0, half_open_successes=1)
    trip(breaker)
    clock.advance(5)
    with breaker:  # a probe of this half-open spell...
        breaker.force_open()  # ...overtaken by the operator
    assert breaker.state is State.OPEN


# -- operator actions ----------------------------------------------------------------------


def test_force_open_holds_until_released() -> None:
    clock = ManualClock()
    breaker = make(clock)
    breaker.force_open()
    clock.advance(10_000)
    with pytest.raises(CircuitOpen) as info:
        breaker.call_sync(ok)
    assert info.value.retry_after_ms > 0
    snap = breaker.snapshot()
    assert (snap["state"], snap["forced"]) == ("open", "open")
    assert snap["retry_after_ms"] is None
    breaker.force_closed()
    assert breaker.call_sync(ok) == "ok"


def test_force_closed_never_trips_but_records() -> None:
    breaker = make(ManualClock())
    breaker.force_closed()
    run(breaker, "x" * 50)
    assert breaker.state is State.CLOSED
    assert breaker.snapshot()["window"]["errors"] == 50
    breaker.reset()
    assert breaker.snapshot()["window"]["total"] == 0
    assert breaker.snapshot()["forced"] is None
    run(breaker, "x" * 10)
    assert breaker.state is State.OPEN


def test_reset_closes_an_open_breaker() -> None:
    breaker = make(ManualClock())
    trip(breaker)
    breaker.reset()
    assert breaker.state is State.CLOSED
    assert breaker.call_sync(ok) == "ok"
    assert breaker.snapshot()["last_transition"]["reason"] == "reset by operator"


def test_transitions_are_logged(caplog: pytest.LogCaptureFixture) -> None:
    clock = ManualClock()
    breaker = make(clock, half_open_probe_ratio=1.0, half_open_successes=1)
    with caplog.at_level(logging.INFO, logger="gamebackend.flow.breaker"):
        trip(breaker)
        clock.advance(5)
        breaker.call_sync(ok)
    messages = [r.getMessage() for r in caplog.records]
    assert any("closed -> open" in m for m in messages)
    assert any("open -> half_open" in m for m in messages)
    assert any("half_open -> closed" in m for m in messages)
    assert [r.levelno for r in caplog.records].count(logging.WARNING) == 1


# -- live rules ----------------------------------------------------------------------------


def test_set_rules_keeps_state() -> None:
    clock = ManualClock()
    registry = BreakerRegistry([brule()], clock=clock)
    breaker = registry.breaker("svc.payments")
    trip(breaker)
    registry.set_rules([brule(threshold=0.9, open_s=7)])
    assert registry.breaker("svc.payments") is breaker
    assert breaker.state is State.OPEN
    assert breaker.rule.threshold == 0.9
    clock.advance(5)  # the current open spell keeps its end time
    assert breaker.call_sync(ok) == "ok"
    # Removing the rule falls back to the default, still keeping state.
    registry.set_rules([])
    assert breaker.rule == default_rule("svc.payments")
    assert breaker.state is State.HALF_OPEN


def test_disabling_a_rule_closes_and_never_trips() -> None:
    clock = ManualClock()
    registry = BreakerRegistry([brule()], clock=clock)
    breaker = registry.breaker("svc.payments")
    trip(breaker)
    registry.set_rules([brule(enabled=False)])
    assert breaker.state is State.CLOSED
    run(breaker, "x" * 100)
    assert breaker.state is State.CLOSED


def test_set_rules_rejects_duplicates() -> None:
    with pytest.raises(RuleError, match="two breaker rules"):
        BreakerRegistry([brule(), brule()])


def test_registry_snapshot_lists_every_breaker() -> None:
    registry = BreakerRegistry(clock=ManualClock())
    registry.breaker("a")
    registry.breaker("b")
    snaps = {s["name"]: s for s in registry.snapshot()}
    assert set(snaps) == {"a", "b"}
    assert set(snaps["a"]) >= {
        "state", "forced", "rule", "window", "error_ratio", "slow_ratio", "open_s",
        "retry_after_ms", "half_open", "last_transition", "counters",
    }  # fmt: skip


# -- async API -----------------------------------------------------------------------------


async def test_async_context_manager_records_outcomes_and_latency() -> None:
    clock = ManualClock()
    registry = BreakerRegistry(
        [brule(strategy="slow_ratio", threshold=1.0, min_requests=3, max_rt_ms=100)],
        clock=clock,
    )
    breaker = registry.breaker("svc.payments")
    async with registry.breaker("svc.payments"):
        clock.advance(0.5)
    with pytest.raises(Boom):
        async with breaker:
            raise Boom
    snap = breaker.snapshot()
    assert snap["counters"]["successes"] == 1
    assert snap["counters"]["failures"] == 1
    assert snap["counters"]["slow"] == 1
    async with breaker:
        clock.advance(0.2)
    async with breaker:
        clock.advance(0.2)
    assert breaker.state is State.CLOSED  # 3 of 4 slow
    breaker.force_open()
    with pytest.raises(CircuitOpen):
        async with breaker:
            pytest.fail("the body must not run when the breaker is open")


async def test_concurrent_tasks_measure_their_own_latency() -> None:
    clock = ManualClock()
    registry = BreakerRegistry(
        [brule(strategy="slow_ratio", threshold=1.0, min_requests=100, max_rt_ms=100)],
        clock=clock,
    )
    breaker = registry.breaker("svc.payments")
    gate = asyncio.Event()

    async def long_call() -> None:
        async with breaker:
            await gate.wait()

    task = asyncio.get_running_loop().create_task(long_call())
    await asyncio.sleep(0)  # long_call enters
    async with breaker:  # a quick call while the long one is in flight
        pass
    clock.advance(1.0)
    gate.set()
    await task
    snap = breaker.snapshot()
    assert snap["counters"]["calls"] == 2
    assert snap["counters"]["slow"] == 1


async def test_nested_breakers_and_cancellation() -> None:
    registry = BreakerRegistry(clock=ManualClock())
    outer, inner = registry.breaker("outer"), registry.breaker("inner")

    async def nested() -> None:
        async with outer:
            async with inner:
                pass
            raise Boom

    with pytest.raises(Boom):
        await nested()
    assert outer.counters()["failures"] == 1
    assert inner.counters()["successes"] == 1
    with pytest.raises(asyncio.CancelledError):
        async with outer:
            raise asyncio.CancelledError
    assert outer.counters()["calls"] == 1  # cancellation says nothing about the dependency


async def test_call_and_decorator() -> None:
    clock = ManualClock()
    registry = BreakerRegistry([brule(resource="svc.echo", min_requests=2)], clock=clock)

    async def echo(value: int, *, plus: int = 0) -> int:
        return value + plus

    assert await registry.breaker("svc.echo").call(echo, 1, plus=2) == 3

    @registry.protect("svc.echo")
    async def flaky(value: int) -> int:
        if value < 0:
            raise Boom
        return value

    assert flaky.__name__ == "flaky"
    assert await flaky(5) == 5
    for _ in range(2):
        with pytest.raises(Boom):
            await flaky(-1)
    with pytest.raises(CircuitOpen):
        await flaky(1)
    assert registry.breaker("svc.echo").counters()["rejected"] == 1

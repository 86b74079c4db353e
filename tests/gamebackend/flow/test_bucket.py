"""Local token buckets and the Limiter, driven by a ManualClock (no sleeps)."""

from __future__ import annotations

import itertools
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gamebackend.flow.bucket import (
    ALLOWED,
    MAX_BURST,
    MAX_QUEUEING_MS,
    MAX_RATE,
    MAX_WARM_UP_S,
    MIN_RATE,
    Behavior,
    Decision,
    Limiter,
    Rule,
    RuleError,
    Scope,
    TokenBucket,
)
from gamebackend.flow.clock import ManualClock


def rule(**overrides: object) -> Rule:
    fields: dict[str, object] = {"resource": "ws.move", "scope": "player", "rate": 10, "burst": 5}
    fields.update(overrides)
    return Rule(**fields)  # type: ignore[arg-type]


def admitted_per_slice(bucket: TokenBucket, clock: ManualClock, seconds: float, step: float,
                       slice_s: float) -> list[int]:  # fmt: skip
    """Saturate ``bucket`` (one check every ``step``) and count admissions per slice."""
    counts = [0] * round(seconds / slice_s)
    start = clock.now()
    for i in range(round(seconds / step)):
        t = start + i * step
        clock.set(t)
        if bucket.try_acquire(t) is ALLOWED:
            counts[min(int((t - start) / slice_s), len(counts) - 1)] += 1
    clock.set(start + seconds)
    return counts


# -- rules ---------------------------------------------------------------------------------


def test_rule_normalises_strings_to_enums() -> None:
    r = rule(scope="ip", behavior="queue", max_queueing_ms=100)
    assert r.scope is Scope.IP
    assert r.behavior is Behavior.QUEUE
    assert isinstance(r.rate, float)
    assert Rule.from_dict(r.to_dict()) == r


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"rate": 0}, "rate"),
        ({"rate": -1}, "rate"),
        ({"rate": math.nan}, "rate"),
        ({"rate": math.inf}, "rate"),
        ({"rate": True}, "rate"),
        ({"rate": "10"}, "rate"),
        ({"burst": 0}, "burst"),
        ({"burst": 0.5}, "burst"),
        ({"scope": "planet"}, "scope"),
        ({"behavior": "drop"}, "behavior"),
        ({"behavior": "queue"}, "max_queueing_ms"),
        ({"behavior": "queue", "max_queueing_ms": -5}, "max_queueing_ms"),
        ({"behavior": "warm_up"}, "warm_up_s"),
        ({"behavior": "warm_up", "warm_up_s": 0}, "warm_up_s"),
        ({"resource": ""}, "resource"),
        ({"enabled": "yes"}, "enabled"),
    ],
)
def test_rule_validation(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(RuleError, match=message):
        rule(**overrides)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        # Issue 12: ws.move was accepted at 1e300/s, burst 1e300 (no limit at all).
        ({"rate": 1e300}, r"rate must be in \[0.0001, 1,000,000\], got 1e\+300"),
        ({"rate": MAX_RATE + 1}, "rate must be in"),
        ({"rate": MIN_RATE / 2}, "rate must be in"),
        ({"burst": 1e300}, r"burst must be in \[1, 1,000,000\], got 1e\+300"),
        ({"burst": MAX_BURST + 1}, "burst must be in"),
        ({"max_queueing_ms": 1e300}, "max_queueing_ms must be in"),
        ({"behavior": "queue", "max_queueing_ms": MAX_QUEUEING_MS + 1}, "max_queueing_ms"),
        ({"warm_up_s": 1e300}, "warm_up_s must be in"),
        ({"behavior": "warm_up", "warm_up_s": MAX_WARM_UP_S + 1}, "warm_up_s"),
    ],
)
def test_rule_numbers_have_upper_bounds(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(RuleError, match=message):
        rule(**overrides)


def test_rule_bounds_themselves_are_accepted() -> None:
    highest = rule(rate=MAX_RATE, burst=MAX_BURST, behavior="queue",
                   max_queueing_ms=MAX_QUEUEING_MS)  # fmt: skip
    assert (highest.rate, highest.burst, highest.max_queueing_ms) == (
        MAX_RATE, MAX_BURST, MAX_QUEUEING_MS,
    )  # fmt: skip
    assert rule(rate=MIN_RATE, burst=1).rate == MIN_RATE
    assert rule(behavior="warm_up", warm_up_s=MAX_WARM_UP_S).warm_up_s == MAX_WARM_UP_S


def test_rule_from_dict_rejects_unknown_and_missing_fields() -> None:
    with pytest.raises(RuleError, match="unknown rule fields: colour"):
        Rule.from_dict({"resource": "a", "scope": "ip", "rate": 1, "burst": 1, "colour": "red"})
    with pytest.raises(RuleError, match="burst"):
        Rule.from_dict({"resource": "a", "scope": "ip", "rate": 1})


def test_rule_error_is_a_value_error() -> None:
    assert issubclass(RuleError, ValueError)


# -- reject behaviour ----------------------------------------------------------------------


def test_rate_over_ten_seconds_within_one_percent() -> None:
    clock = ManualClock()
    bucket = TokenBucket(rule(rate=100, burst=10), clock.now())
    counts = admitted_per_slice(bucket, clock, seconds=10, step=0.0005, slice_s=10)
    # The full burst is spent at once; after that exactly the refill rate gets through.
    sustained = (counts[0] - 10) / 10
    assert sustained == pytest.approx(100, rel=0.01)


def test_burst_then_rejection_with_retry_hint() -> None:
    bucket = TokenBucket(rule(rate=10, burst=5), 0.0)
    assert [bucket.try_acquire(0.0) for _ in range(5)] == [ALLOWED] * 5
    rejected = bucket.try_acquire(0.0)
    assert rejected.rejected
    assert not rejected.queued
    assert rejected.retry_after_ms == 100  # one token at 10/s
    assert bucket.try_acquire(0.05).retry_after_ms == 50
    assert bucket.try_acquire(0.1) is ALLOWED


def test_allowed_decision_is_a_shared_singleton() -> None:
    bucket = TokenBucket(rule(rate=1000, burst=1000), 0.0)
    assert bucket.try_acquire(0.0) is bucket.try_acquire(0.0) is ALLOWED
    assert Decision(True) == ALLOWED


def test_time_going_backwards_does_not_mint_tokens() -> None:
    # Binary-exact times (1/16 s at 8 tokens/s) so the sums are exact.
    bucket = TokenBucket(rule(rate=8, burst=1), 5.0)
    assert bucket.try_acquire(5.0) is ALLOWED
    assert bucket.try_acquire(4.0).rejected
    assert bucket.try_acquire(5.0625).rejected
    assert bucket.try_acquire(5.125) is ALLOWED


# -- queue behaviour -----------------------------------------------------------------------


def test_queue_delays_in_order_up_to_the_bound() -> None:
    bucket = TokenBucket(rule(rate=10, burst=1, behavior="queue", max_queueing_ms=500), 0.0)
    assert bucket.try_acquire(0.0) is ALLOWED
    delays = [bucket.try_acquire(0.0) for _ in range(5)]
    assert all(d.allowed and d.queued for d in delays)
    assert [d.delay_s for d in delays] == pytest.approx([0.1, 0.2, 0.3, 0.4, 0.5])
    over = bucket.try_acquire(0.0)
    assert over.rejected
    # The wait would be 0.6 s; it fits the 0.5 s bound in 0.1 s.
    assert over.retry_after_ms == 100
    # The reservations stand: a tenth of a second later the queue is one shorter.
    later = bucket.try_acquire(0.1)
    assert later.delay_s == pytest.approx(0.5)
    assert bucket.try_acquire(0.1).rejected


def test_queued_callers_proceed_at_the_rule_rate() -> None:
    bucket = TokenBucket(rule(rate=20, burst=2, behavior="queue", max_queueing_ms=10_000), 0.0)
    go_times = []
    for _ in range(100):
        d = bucket.try_acquire(0.0)
        assert d.allowed
        go_times.append(d.delay_s)
    assert go_times[:2] == [0.0, 0.0]
    gaps = [b - a for a, b in itertools.pairwise(go_times[2:])]
    assert gaps == pytest.approx([1 / 20] * len(gaps))


# -- warm-up behaviour ---------------------------------------------------------------------


def warm_rule(**overrides: object) -> Rule:
    fields: dict[str, object] = {
        "rate": 300, "burst": 30, "behavior": "warm_up", "warm_up_s": 10,
    }  # fmt: skip
    fields.update(overrides)
    return rule(**fields)


def expected_ramp(i: int, rate: float = 300, warm: float = 10) -> float:
    """Admissions in second ``i`` of a ramp: the integral of the linear curve."""
    if i >= warm:
        return rate
    mid = (i + 0.5) / warm
    return rate * (1 / 3 + (2 / 3) * mid)


def test_warm_up_ramps_from_a_third_to_full_rate() -> None:
    clock = ManualClock()
    bucket = TokenBucket(warm_rule(), clock.now())
    counts = admitted_per_slice(bucket, clock, seconds=12, step=0.001, slice_s=1)
    for i, count in enumerate(counts):
        # +1: the first call of the ramp takes the bucket's single token.
        assert abs(count - expected_ramp(i)) <= 2, (i, count, counts)
    assert counts == sorted(counts)  # monotonic
    assert counts[0] < 300 / 3 * 1.15  # starts at a third...
    assert counts[10] == counts[11] == 300  # ...full after warm_up_s


def test_warm_up_first_instant_is_a_third_of_the_rate() -> None:
    clock = ManualClock()
    bucket = TokenBucket(warm_rule(), clock.now())
    counts = admitted_per_slice(bucket, clock, seconds=0.3, step=0.0001, slice_s=0.3)
    assert counts[0] == pytest.approx(1 + 0.3 * 100, abs=2)  # not the 30-token burst


def test_warm_up_restarts_after_an_idle_spell_only() -> None:
    clock = ManualClock()
    bucket = TokenBucket(warm_rule(), clock.now())
    admitted_per_slice(bucket, clock, seconds=11, step=0.001, slice_s=11)
    # A short pause (full bucket, but touched less than warm_up_s ago): burst + full rate.
    clock.advance(1.0)
    counts = admitted_per_slice(bucket, clock, seconds=1, step=0.001, slice_s=1)
    assert counts[0] == pytest.approx(30 + 300, abs=2)
    # Idle for warm_up_s: cold again, the ramp starts over.
    clock.advance(10.0)
    counts = admitted_per_slice(bucket, clock, seconds=2, step=0.001, slice_s=1)
    assert counts[0] == pytest.approx(expected_ramp(0), abs=2)
    assert counts[1] == pytest.approx(expected_ramp(1), abs=2)


def test_warm_up_rejections_carry_the_current_rate_retry_hint() -> None:
    bucket = TokenBucket(warm_rule(rate=30, warm_up_s=10), 0.0)
    assert bucket.try_acquire(0.0) is ALLOWED
    # Cold rate 10/s: the next token is 100 ms away.
    assert bucket.try_acquire(0.0).retry_after_ms == 100


# -- property tests ------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(
    rate=st.floats(0.1, 1000),
    burst=st.integers(1, 100),
    behavior=st.sampled_from(["reject", "queue", "warm_up"]),
    max_wait_ms=st.floats(1, 2000),
    steps=st.lists(st.tuples(st.floats(0, 0.5), st.integers(1, 20)), max_size=60),
)
def test_never_admits_more_than_burst_plus_rate_times_elapsed(
    rate: float,
    burst: int,
    behavior: str,
    max_wait_ms: float,
    steps: list[tuple[float, int]],
) -> None:
    r = rule(rate=rate, burst=burst, behavior=behavior, max_queueing_ms=max_wait_ms,
             warm_up_s=2.0)  # fmt: skip
    bucket = TokenBucket(r, 0.0)
    now = 0.0
    admitted = 0
    for dt, calls in steps:
        now += dt
        for _ in range(calls):
            d = bucket.try_acquire(now)
            if d.allowed:
                admitted += 1
                assert d.delay_s <= max_wait_ms / 1000 + 1e-9
                # A queued caller goes at now + delay: count it against that instant.
                assert admitted <= burst + rate * (now + d.delay_s) + 1e-6
            else:
                assert d.retry_after_ms >= 1
    queue_s = max_wait_ms / 1000 if behavior == "queue" else 0.0
    assert admitted <= burst + rate * (now + queue_s) + 1e-6


# -- Limiter -------------------------------------------------------------------------------


def test_limiter_keys_buckets_per_scope_key() -> None:
    limiter = Limiter([rule(rate=1, burst=2)], clock=ManualClock())
    outcomes = [limiter.check("ws.move", "player", "p1").allowed for _ in range(3)]
    assert outcomes == [True, True, False]
    assert limiter.check("ws.move", "player", "p2").allowed
    # Other resources and scopes without a rule pass.
    assert limiter.check("ws.chat", "player", "p1") is ALLOWED
    assert limiter.check("ws.move", Scope.IP, "1.2.3.4") is ALLOWED


def test_limiter_counters() -> None:
    clock = ManualClock()
    limiter = Limiter(
        [rule(rate=1, burst=2), rule(scope="node", behavior="queue", max_queueing_ms=1500, rate=1,
                                     burst=1)],
        clock=clock,
    )  # fmt: skip
    for _ in range(3):
        limiter.check("ws.move", "player", "p1")
    for _ in range(3):
        limiter.check("ws.move", "node", "n")
    by_scope = {c["scope"]: c for c in limiter.counters()}
    assert by_scope["player"] | {} == {
        "resource": "ws.move", "scope": "player", "enabled": True,
        "allowed": 2, "queued": 0, "rejected": 1, "buckets": 1, "evicted": 0,
    }  # fmt: skip
    assert (by_scope["node"]["allowed"], by_scope["node"]["queued"]) == (1, 1)
    assert by_scope["node"]["rejected"] == 1


def test_set_rules_keeps_bucket_state_and_clamps_to_the_new_burst() -> None:
    clock = ManualClock()
    limiter = Limiter([rule(rate=10, burst=10)], clock=clock)
    for _ in range(10):
        assert limiter.check("ws.move", "player", "p1").allowed
    limiter.check("ws.move", "player", "p2")  # p2 keeps 9 tokens
    # A bigger burst does not refill an empty bucket.
    limiter.set_rules([rule(rate=10, burst=20)])
    assert limiter.check("ws.move", "player", "p1").rejected
    # A smaller burst clamps a fuller one on its next check.
    limiter.set_rules([rule(rate=10, burst=4)])
    assert sum(limiter.check("ws.move", "player", "p2").allowed for _ in range(9)) == 4
    # The new rate applies from the next check on.
    limiter.set_rules([rule(rate=100, burst=4)])
    clock.advance(0.02)
    assert sum(limiter.check("ws.move", "player", "p2").allowed for _ in range(5)) == 2
    # The gate is the same object across updates (the gateway may hold it).
    gate = limiter.gate("ws.move", "player")
    limiter.set_rules([rule(rate=5, burst=5)])
    assert limiter.gate("ws.move", "player") is gate
    assert len(gate) == 2


def test_set_rules_removing_a_rule_frees_its_buckets() -> None:
    limiter = Limiter([rule(rate=1, burst=1)], clock=ManualClock())
    limiter.check("ws.move", "player", "p1")
    gate = limiter.gate("ws.move", "player")
    limiter.set_rules([])
    assert len(gate) == 0
    assert all(limiter.check("ws.move", "player", "p1") is ALLOWED for _ in range(5))


def test_disabled_rule_lets_everything_through() -> None:
    limiter = Limiter([rule(rate=1, burst=1, enabled=False)], clock=ManualClock())
    assert all(limiter.check("ws.move", "player", "p1") is ALLOWED for _ in range(5))
    bucket = TokenBucket(rule(rate=1, burst=1, enabled=False), 0.0)
    assert all(bucket.try_acquire(0.0) is ALLOWED for _ in range(5))


def test_set_rules_rejects_duplicates_and_routes_cluster_rules() -> None:
    limiter = Limiter()
    with pytest.raises(RuleError, match="two player rules"):
        limiter.set_rules([rule(), rule(rate=3)])
    with pytest.raises(RuleError, match="two cluster rules"):
        limiter.set_rules([rule(scope="cluster"), rule(scope="cluster")])
    cluster = rule(scope="cluster", rate=1000, burst=100)
    limiter.set_rules([rule(), cluster])
    assert limiter.cluster_rule("ws.move") == cluster
    assert limiter.cluster_rule("ws.chat") is None
    assert limiter.check("ws.move", "cluster", "x") is ALLOWED  # not enforced locally
    with pytest.raises(ValueError, match="ClusterBucket"):
        limiter.gate("ws.move", "cluster")
    assert set(limiter.rules()) == {rule(), cluster}


def test_idle_buckets_are_evicted_as_new_keys_arrive() -> None:
    clock = ManualClock()
    limiter = Limiter([rule(rate=10, burst=10)], clock=clock)  # idle after 1 s (+1 s margin)
    gate = limiter.gate("ws.move", "player")
    for i in range(1000):
        limiter.check("ws.move", "player", f"old{i}")
    clock.advance(3.0)
    for i in range(1000):
        limiter.check("ws.move", "player", f"new{i}")
    assert len(gate) == 1000
    assert gate.bucket("old999") is None
    assert gate.evicted == 1000


def test_a_hundred_thousand_players_do_not_pile_up() -> None:
    clock = ManualClock()
    limiter = Limiter([rule(rate=10, burst=10)], clock=clock)
    gate = limiter.gate("ws.move", "player")
    for i in range(100_000):
        clock.advance(0.001)  # 1000 new players a second, each seen once
        limiter.check("ws.move", "player", f"p{i}")
    assert len(gate) <= 2_100  # about two seconds' worth: the idle TTL
    assert gate.evicted >= 97_900


def test_hard_cap_and_sweep() -> None:
    clock = ManualClock()
    limiter = Limiter([rule(rate=10, burst=10)], clock=clock, max_buckets_per_rule=100)
    gate = limiter.gate("ws.move", "player")
    for i in range(1000):
        limiter.check("ws.move", "player", f"p{i}")
    assert len(gate) == 100
    assert gate.bucket("p999") is not None
    assert limiter.sweep() == 0  # nothing idle yet
    clock.advance(5)
    assert limiter.sweep() == 100
    assert len(gate) == 0


def test_recently_checked_keys_survive_eviction() -> None:
    clock = ManualClock()
    limiter = Limiter([rule(rate=10, burst=10)], clock=clock, max_buckets_per_rule=3)
    for key in ("a", "b", "c"):
        limiter.check("ws.move", "player", key)
    limiter.check("ws.move", "player", "a")  # a is now the most recent
    limiter.check("ws.move", "player", "d")  # evicts b, the least recent
    gate = limiter.gate("ws.move", "player")
    assert gate.bucket("b") is None
    assert gate.bucket("a") is not None

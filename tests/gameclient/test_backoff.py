"""Reconnect backoff: 1 s, 2 s, 4 s ... capped at 30 s, jittered downwards."""

from __future__ import annotations

import random
from typing import Any

import pytest

from gameclient import Backoff


def test_sequence_without_jitter() -> None:
    backoff = Backoff(jitter=0.0)
    delays = [backoff.next_delay() for _ in range(9)]
    assert delays == [1, 2, 4, 8, 16, 30, 30, 30, 30]


def test_rng_at_zero_gives_nominal_delays() -> None:
    backoff = Backoff(rng=lambda: 0.0)
    assert [backoff.next_delay() for _ in range(6)] == [1, 2, 4, 8, 16, 30]


def test_jitter_bounds_and_cap() -> None:
    rng = random.Random(1234)
    backoff = Backoff(jitter=0.25, rng=rng.random)
    for attempt in range(200):
        nominal = min(30.0, 2.0**attempt)
        delay = backoff.next_delay()
        assert nominal * 0.75 <= delay <= nominal
        assert delay <= 30.0


def test_jitter_actually_spreads() -> None:
    rng = random.Random(7)
    delays = set()
    for _ in range(20):
        backoff = Backoff(rng=rng.random)
        delays.add(backoff.next_delay())
    assert len(delays) > 10


def test_reset() -> None:
    backoff = Backoff(jitter=0.0)
    for _ in range(5):
        backoff.next_delay()
    backoff.reset()
    assert backoff.next_delay() == 1.0


def test_huge_attempt_counts_do_not_overflow() -> None:
    backoff = Backoff(jitter=0.0)
    assert backoff.nominal(10_000) == 30.0


def test_injectable_small_delays() -> None:
    backoff = Backoff(base_s=0.01, cap_s=0.05, jitter=0.0)
    assert [backoff.next_delay() for _ in range(5)] == pytest.approx([0.01, 0.02, 0.04, 0.05, 0.05])


@pytest.mark.parametrize(
    "kwargs", [{"base_s": -1}, {"factor": 0.5}, {"jitter": 1.5}, {"cap_s": -1}]
)
def test_rejects_nonsense(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="need"):
        Backoff(**kwargs)

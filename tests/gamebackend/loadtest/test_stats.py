"""The load bots' latency histogram against exact nearest-rank percentiles."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gamebackend.loadtest.stats import (
    RELATIVE_ERROR,
    LatencyHistogram,
    RunStats,
    format_summary,
    nearest_rank,
)

PERCENTILES = (1, 25, 50, 90, 99, 99.9, 100)


def filled(values: list[float]) -> LatencyHistogram:
    hist = LatencyHistogram()
    for value in values:
        hist.record(value)
    return hist


def assert_close(got: float | None, want: float | None) -> None:
    assert got is not None
    assert want is not None
    assert abs(got - want) <= want * RELATIVE_ERROR + 1e-9, (got, want)


def test_empty_histogram_has_no_percentiles() -> None:
    hist = LatencyHistogram()
    assert hist.percentile(50) is None
    assert hist.mean is None
    assert nearest_rank([], 50) is None


def test_single_sample_is_every_percentile_exactly() -> None:
    hist = filled([0.0042])
    for p in PERCENTILES:
        assert hist.percentile(p) == pytest.approx(0.0042)


def test_max_and_min_are_exact() -> None:
    values = [0.001, 0.002, 0.5, 0.0031]
    hist = filled(values)
    assert hist.percentile(100) == 0.5
    assert hist.max == 0.5
    assert hist.min == 0.001
    assert hist.mean == pytest.approx(sum(values) / len(values))


def test_lognormal_samples_within_relative_error() -> None:
    rng = random.Random(7)
    values = [rng.lognormvariate(-6.0, 1.2) for _ in range(20_000)]
    hist = filled(values)
    for p in PERCENTILES:
        assert_close(hist.percentile(p), nearest_rank(values, p))


@given(st.lists(st.floats(min_value=1e-5, max_value=60.0), min_size=1, max_size=300))
def test_any_samples_within_relative_error(values: list[float]) -> None:
    hist = filled(values)
    for p in PERCENTILES:
        assert_close(hist.percentile(p), nearest_rank(values, p))


def test_sub_microsecond_and_negative_samples_count_as_instant() -> None:
    hist = filled([-0.001, 0.0000001, 0.01])
    assert hist.count == 3
    assert 0.0 <= (hist.percentile(50) or 0.0) < 1e-6
    assert hist.percentile(100) == pytest.approx(0.01)


def test_merge_equals_recording_everything() -> None:
    rng = random.Random(3)
    a = [rng.uniform(0.001, 0.01) for _ in range(500)]
    b = [rng.uniform(0.01, 0.1) for _ in range(500)]
    merged = filled(a)
    merged.merge(filled(b))
    whole = filled(a + b)
    assert merged.counts == whole.counts
    for p in PERCENTILES:
        assert merged.percentile(p) == whole.percentile(p)


def test_percentile_out_of_range_is_rejected() -> None:
    with pytest.raises(ValueError, match="percentile"):
        filled([0.1]).percentile(0)


def test_summary_counts_only_the_window() -> None:
    stats = RunStats(players=2, connected=2, held=2, peak_held=2)
    stats.requests, stats.answered, stats.sent, stats.received = 10, 10, 99, 99
    stats.reset_window()
    stats.requests, stats.answered, stats.error_replies, stats.window_s = 4, 2, 1, 2.0
    stats.latency.record(0.002)
    summary = stats.summary(outstanding=5)
    assert summary["unanswered"] == 1
    assert summary["answered_per_s"] == 1.0
    assert summary["latency_ms"]["p50"] == pytest.approx(2.0, rel=RELATIVE_ERROR)
    text = format_summary(summary)
    assert "p50 2.0" in text
    assert "unanswered 1" in text

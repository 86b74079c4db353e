"""Pure parts of the console report: operator blocks and latency quantiles from buckets."""

from __future__ import annotations

from gamebackend.gateway.console_report import BlockList, _quantile_ms


def test_block_list_blocks_until_its_end() -> None:
    now = [1_000.0]
    blocks = BlockList(clock=lambda: now[0])
    blocks.add("p1", 1_060.0)
    assert blocks.until("p1") == "1970-01-01T00:17:40+00:00"
    assert blocks.until("p2") is None
    # A reload from the database keeps a newer local block and adds the others.
    blocks.replace({"p2": 1_030.0, "p1": 1_010.0})
    assert blocks.until("p1") is not None
    assert blocks.until("p2") is not None
    now[0] = 1_061.0
    assert blocks.until("p1") is None
    assert blocks.until("p2") is None


def test_quantiles_come_from_the_observations_between_two_reads() -> None:
    inf = float("inf")
    before = [(0.001, 10.0), (0.008, 10.0), (inf, 10.0)]
    # 100 new observations: 90 under 1 ms, 9 under 8 ms, 1 slower.
    after = [(0.001, 100.0), (0.008, 109.0), (inf, 110.0)]
    assert _quantile_ms(before, after, 0.50) == 1.0
    assert _quantile_ms(before, after, 0.95) == 8.0
    assert _quantile_ms(before, after, 0.999) is None  # beyond the last finite bucket
    assert _quantile_ms(after, after, 0.5) is None  # nothing observed

"""The node's cycle-collector settings (gamebackend/server/collector.py)."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from gamebackend.server.collector import YOUNG_THRESHOLD, settle_garbage_collector


@pytest.fixture
def restored_collector() -> Iterator[None]:
    before = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*before)


@pytest.mark.usefixtures("restored_collector")
def test_the_start_up_heap_is_frozen_and_young_collections_are_spaced_out() -> None:
    _, middle, old = gc.get_threshold()
    settle_garbage_collector()
    assert gc.get_freeze_count() > 0  # the modules loaded so far leave the collector's sight
    # Only the youngest generation's threshold changes: cycles are still collected.
    assert gc.get_threshold() == (YOUNG_THRESHOLD, middle, old)
    garbage: list[list[object]] = [[]]
    garbage[0].append(garbage)  # a cycle created after start-up
    del garbage
    assert gc.collect() >= 1

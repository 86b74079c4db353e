"""The cycle collector's settings for a node process (any server).

While a collection runs the event loop stands still, so the collector's pauses are the
latency tail: at 1,000 players x 3 moves/s they set the `move` p99 (docs/BENCHMARKS.md,
*Garbage collector*). Two things keep them short and rare:

* Everything loaded at start-up (Django, the app: ~110,000 objects) lives as long as the
  process: it is moved out of the collector's sight (``gc.freeze``), so no full
  collection walks it again.
* The youngest generation is collected after ``YOUNG_THRESHOLD`` net allocations instead
  of Python's 700. A node has tens of thousands of short-lived tracked objects in flight
  (each connection's pending reads, replies kept until acked, session records); at 700 the
  collector ran about ten times a second and walked all of them each time, costing about
  5 % of the loop's time in pauses of 3-17 ms. At 20,000 it runs a few times in ten
  seconds for the same total work, so fewer than 1 % of requests meet a pause (measured
  with the ``gc=False`` messages: `move` p99 33-54 ms -> 8.3-14 ms, p50 unchanged).

The older generations keep Python's thresholds: garbage cycles (a closed connection's
objects) are still collected.
"""

from __future__ import annotations

import gc
from typing import Final

# Net allocations of tracked objects between two collections of the youngest generation.
YOUNG_THRESHOLD: Final = 20_000


def settle_garbage_collector() -> None:
    """Freeze the start-up heap and space out young collections (call once, at start)."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)

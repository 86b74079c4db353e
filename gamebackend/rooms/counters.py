"""Node-wide room counters, for the metrics sampler (``gateway/metrics_sampler.py``).

Every room also keeps its own (``RoomMetrics``, for its stats page and its stop log), but
those vanish with the room; these survive it, so ``/metrics`` counters never lose the
last ticks of a room that stopped between two samples. Plain ints on one event loop per
process (no lock); the sampler drains them.
"""

from __future__ import annotations

from collections import Counter, deque
from typing import Final

__all__ = ["JITTER_SINK_SIZE", "jitter_s", "totals"]

# Tick-jitter samples kept between two metric samples (5 s): 1,000 rooms at 20 Hz close
# 100,000 ticks in that time; the histogram gets the most recent ones, which is plenty
# for a p99 and bounds the sampler's work.
JITTER_SINK_SIZE: Final = 8192

# ticks, inputs, late_inputs, late_dropped, overruns, desyncs: since the last drain.
totals: Counter[str] = Counter()
jitter_s: deque[float] = deque(maxlen=JITTER_SINK_SIZE)

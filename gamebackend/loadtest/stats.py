"""Latency histogram and run counters for the load bots; pure Python, no I/O.

Latencies go into log-spaced buckets rather than a list of samples so memory stays
constant for any run length (a 10-minute run at 10k req/s would be 6M floats) while
percentiles stay within ``RELATIVE_ERROR`` of the exact value.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Final

# Each bucket spans a factor of GROWTH, so a reported percentile (the bucket's geometric
# middle) is within half of that, ~0.5 %, of the true sample.
GROWTH: Final = 1.01
RELATIVE_ERROR: Final = GROWTH - 1.0
_INV_LOG_GROWTH: Final = 1.0 / math.log(GROWTH)
# Latencies are kept in microseconds; the last bucket holds everything above ~100 s.
MAX_TRACKED_US: Final = 100_000_000
BUCKETS: Final = int(math.log(MAX_TRACKED_US) * _INV_LOG_GROWTH) + 2
US_PER_S: Final = 1_000_000


class LatencyHistogram:
    """Log-bucketed latencies (seconds in, seconds out), with exact min, max and mean."""

    __slots__ = ("count", "counts", "max", "min", "total")

    def __init__(self) -> None:
        self.counts = [0] * BUCKETS
        self.count = 0
        self.total = 0.0
        self.min = math.inf
        self.max = 0.0

    def record(self, seconds: float) -> None:
        if seconds < 0.0:
            seconds = 0.0  # a clock step must not crash the bots; count it as instant
        us = seconds * US_PER_S
        index = 0 if us < 1.0 else min(int(math.log(us) * _INV_LOG_GROWTH) + 1, BUCKETS - 1)
        self.counts[index] += 1
        self.count += 1
        self.total += seconds
        if seconds < self.min:
            self.min = seconds
        if seconds > self.max:
            self.max = seconds

    def merge(self, other: LatencyHistogram) -> None:
        for i, c in enumerate(other.counts):
            if c:
                self.counts[i] += c
        self.count += other.count
        self.total += other.total
        self.min = min(self.min, other.min)
        self.max = max(self.max, other.max)

    def percentile(self, p: float) -> float | None:
        """Nearest-rank percentile ``p`` (0 < p <= 100) in seconds; None when empty."""
        if not 0.0 < p <= 100.0:
            raise ValueError("percentile must be in (0, 100]")
        if self.count == 0:
            return None
        rank = max(1, math.ceil(p / 100.0 * self.count))
        if rank == self.count:
            return self.max  # the extremes are tracked exactly
        if rank == 1:
            return self.min
        seen = 0
        for index, c in enumerate(self.counts):
            seen += c
            if seen >= rank:
                return min(max(_bucket_value(index), self.min), self.max)
        return self.max

    @property
    def mean(self) -> float | None:
        return self.total / self.count if self.count else None


def _bucket_value(index: int) -> float:
    """The geometric middle of a bucket, in seconds (bucket 0 holds everything < 1 us)."""
    if index == 0:
        return 0.0
    low = math.exp((index - 1) / _INV_LOG_GROWTH)
    return low * math.sqrt(GROWTH) / US_PER_S


def nearest_rank(values: list[float], p: float) -> float | None:
    """Exact nearest-rank percentile of ``values`` (the definition the histogram follows)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100.0 * len(ordered)))
    return ordered[rank - 1]


@dataclass
class RunStats:
    """Everything one load run counts; ``window`` counters restart with the measurement."""

    players: int = 0
    connect_attempts: int = 0
    connected: int = 0  # sockets that completed the upgrade (and got welcome)
    held: int = 0  # currently open
    peak_held: int = 0
    connect_failures: Counter[str] = field(default_factory=Counter)  # by cause
    # Connect steps the server rate-limited and the bot retried after its hint, by cause.
    connect_retries: Counter[str] = field(default_factory=Counter)
    closes: Counter[int] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    local_addresses: Counter[str] = field(default_factory=Counter)
    pings_answered: int = 0
    acks_sent: int = 0
    # Measurement window (reset when it starts).
    sent: int = 0
    received: int = 0
    requests: int = 0
    answered: int = 0
    error_replies: int = 0
    latency: LatencyHistogram = field(default_factory=LatencyHistogram)
    window_s: float = 0.0

    def reset_window(self) -> None:
        self.sent = self.received = self.requests = self.answered = self.error_replies = 0
        self.latency = LatencyHistogram()

    def summary(self, *, outstanding: int) -> dict[str, Any]:
        lat = self.latency
        window = self.window_s or math.nan

        def ms(value: float | None) -> float | None:
            return None if value is None else round(value * 1000.0, 3)

        return {
            "players": self.players,
            "connect_attempts": self.connect_attempts,
            "connected": self.connected,
            "held_at_end": self.held,
            "peak_held": self.peak_held,
            "connect_failures": dict(self.connect_failures),
            "connect_retries": dict(self.connect_retries),
            "closes": {str(k): v for k, v in sorted(self.closes.items())},
            "errors": dict(self.errors),
            "source_addresses": len(self.local_addresses),
            "pings_answered": self.pings_answered,
            "acks_sent": self.acks_sent,
            "window_s": round(self.window_s, 3),
            "requests": self.requests,
            "answered": self.answered,
            "error_replies": self.error_replies,
            # Window requests with no reply yet (replies to warm-up requests don't count).
            "unanswered": max(0, self.requests - self.answered - self.error_replies),
            "unanswered_all": outstanding,
            # WebSocket frames both ways per request (requests, replies, acks, pings, pongs).
            "frames_per_request": (
                round((self.sent + self.received) / self.requests, 3) if self.requests else None
            ),
            "sent_per_s": round(self.sent / window, 1) if self.window_s else None,
            "received_per_s": round(self.received / window, 1) if self.window_s else None,
            "answered_per_s": round(self.answered / window, 1) if self.window_s else None,
            "latency_ms": {
                "count": lat.count,
                "p50": ms(lat.percentile(50)),
                "p99": ms(lat.percentile(99)),
                "max": ms(lat.max if lat.count else None),
                "mean": ms(lat.mean),
            },
        }


def _counts(counter: dict[Any, int]) -> str:
    if not counter:
        return "none"
    return ", ".join(f"{key} x{n}" for key, n in sorted(counter.items(), key=lambda kv: -kv[1]))


def format_summary(s: dict[str, Any]) -> str:
    lat = s["latency_ms"]

    def num(value: float | None, unit: str = "") -> str:
        return "-" if value is None else f"{value:.2f}{unit}"

    return "\n".join(
        [
            f"connections: held {s['held_at_end']} of {s['players']} at the end "
            f"(peak {s['peak_held']}, {s['connected']} connected); "
            f"connect failures: {_counts(s['connect_failures'])}",
            f"connect retries (rate-limited, retried after the server's retry_after_ms): "
            f"{_counts(s.get('connect_retries', {}))}",
            f"closes: {_counts(s['closes'])}",
            f"errors: {_counts(s['errors'])}",
            f"requests (over {s['window_s']:.1f} s): sent {s['requests']}, "
            f"answered {s['answered']} ({s['error_replies']} with error), "
            f"unanswered {s['unanswered']}",
            f"messages/s: sent {num(s['sent_per_s'])}, received {num(s['received_per_s'])}; "
            f"pings answered {s['pings_answered']}, acks sent {s['acks_sent']}",
            f"latency: p50 {num(lat['p50'], ' ms')}, p99 {num(lat['p99'], ' ms')}, "
            f"max {num(lat['max'], ' ms')} (n={lat['count']})",
            f"source addresses: {s['source_addresses']}",
        ]
    )

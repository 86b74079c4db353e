"""The console's store of the nodes' live state and last hour: in memory and in Redis."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from gamebackend.metrics.series import (
    LIVE_TTL_S,
    POINTS_KEPT,
    MemorySeries,
    RedisSeries,
    SeriesStore,
)


class Clock:
    def __init__(self) -> None:
        self.t = 1_000_000.0

    def __call__(self) -> float:
        return self.t


def exercise(store: SeriesStore, clock: Clock) -> None:
    store.put_live("a", {"connections": 3})
    store.put_live("b", {"connections": 4})
    assert store.live() == {"a": {"connections": 3}, "b": {"connections": 4}}
    for n in range(3):
        store.put_point("a", {"t": clock.t + n * 10, "connections": n})
    assert [p["connections"] for p in store.history(clock.t + 5)["a"]] == [1, 2]
    # A node that stops writing leaves the live view.
    clock.t += LIVE_TTL_S + 1
    store.put_live("b", {"connections": 5})
    assert store.live() == {"b": {"connections": 5}}
    store.put_answer("k1", {"player_id": "p"})
    assert store.answer("k1") == {"player_id": "p"}
    assert store.answer("missing") is None


def test_memory_series() -> None:
    clock = Clock()
    exercise(MemorySeries(clock=clock), clock)


def test_memory_series_keeps_one_hour_of_points() -> None:
    store = MemorySeries()
    for n in range(POINTS_KEPT + 5):
        store.put_point("a", {"t": float(n)})
    points = store.history(0.0)["a"]
    assert len(points) == POINTS_KEPT
    assert points[0]["t"] == 5.0


def test_redis_series(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import redis

    from gamebackend.metrics import series

    client: Any = redis.Redis.from_url(redis_url)
    # Keys of this test only (other tests share the db number).
    monkeypatch.setattr(series, "_PREFIX", f"test:{uuid.uuid4().hex}:")
    clock = Clock()
    clock.t = __import__("time").time()
    try:
        exercise(RedisSeries(client, clock=clock), clock)
    finally:
        for key in client.scan_iter(f"{series._PREFIX}*"):
            client.delete(key)

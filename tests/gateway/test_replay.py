"""Anti-replay stores: expiry-ordered pruning, the SQLite journal, Redis (no Django)."""

from __future__ import annotations

import asyncio
import sqlite3
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis.asyncio

from gamebackend.gateway.replay import (
    DurableReplayStore,
    LocalReplayStore,
    RedisReplayStore,
    ReplayStoreFull,
    ReplayStoreUnavailable,
)
from gamebackend.gateway.tickets import TicketRejected, check_ticket
from gameproto.tickets import mint_ticket

SECRET = "test-secret-" + "s" * 64
NOW = 1_700_000_000.0
YEAR_S = 365 * 86400


def unique_jti() -> str:
    return f"test-{uuid.uuid4().hex}"


async def test_local_store_prunes_expired_entries() -> None:
    clock = [NOW]
    store = LocalReplayStore(clock=lambda: clock[0])
    assert await store.claim("a", NOW + 10)
    assert await store.claim("b", NOW + 20)
    assert not await store.claim("a", NOW + 10)
    clock[0] = NOW + 10
    assert await store.claim("c", NOW + 30)
    assert len(store) == 2  # "a" pruned
    clock[0] = NOW + 100
    assert await store.claim("d", NOW + 200)
    assert len(store) == 1


async def test_local_store_out_of_order_expiry_never_forgets_early() -> None:
    clock = [NOW]
    store = LocalReplayStore(clock=lambda: clock[0])
    assert await store.claim("long", NOW + 100)
    assert await store.claim("short", NOW + 5)
    clock[0] = NOW + 50
    assert not await store.claim("long", NOW + 100)  # still remembered


async def test_local_store_is_bounded_and_fails_closed() -> None:
    store = LocalReplayStore(max_entries=2, clock=lambda: NOW)
    assert await store.claim("a", NOW + 10)
    assert await store.claim("b", NOW + 10)
    with pytest.raises(ReplayStoreFull) as info:
        await store.claim("c", NOW + 10)
    assert info.value.reason == "replay_store_full"
    assert not await store.claim("a", NOW + 10)


async def test_one_far_future_expiry_does_not_stop_pruning() -> None:
    # Issue 12 item 8: pruning stopped at the first unexpired entry in claim order, so
    # one long-lived jti kept every later, shorter-lived one: the store filled up and
    # refused every connect.
    clock = [NOW]
    store = LocalReplayStore(max_entries=10, clock=lambda: clock[0])
    assert await store.claim("far", NOW + YEAR_S)
    for i in range(100):
        clock[0] = NOW + i
        assert await store.claim(f"j{i}", NOW + i + 5)
    assert len(store) <= 7  # "far" and the last five or six short ones
    assert not await store.claim("far", NOW + YEAR_S)


async def test_pruning_follows_expiry_not_claim_order() -> None:
    clock = [NOW]
    store = LocalReplayStore(clock=lambda: clock[0])
    for jti, ttl in [("c", 30), ("a", 10), ("b", 20)]:
        assert await store.claim(jti, NOW + ttl)
    clock[0] = NOW + 10
    await store.claim("probe1", NOW + 40)
    assert len(store) == 3  # a pruned; b, c, probe1
    assert await store.claim("a", NOW + 50)  # forgotten only once expired
    assert not await store.claim("b", NOW + 20)
    clock[0] = NOW + 30
    await store.claim("probe2", NOW + 60)
    assert not await store.claim("probe1", NOW + 40)
    assert len(store) == 3  # b and c expired; a (claimed again), probe1, probe2 remain
    assert await store.claim("c", NOW + 60)


# --- the durable (SQLite) store ---------------------------------------------------------


async def test_durable_store_remembers_across_instances(tmp_path: Path) -> None:
    path = tmp_path / "tickets.sqlite3"
    now = time.time()
    first = DurableReplayStore(path)
    assert await first.claim("used", now + 30)
    assert not await first.claim("used", now + 30)
    await first.close()

    second = DurableReplayStore(path)
    assert not await second.claim("used", now + 30)  # remembered from the file
    assert await second.claim("fresh", now + 30)
    await second.close()


async def test_a_claim_is_on_disk_when_it_returns(tmp_path: Path) -> None:
    # No close(): as if the process died right after letting the player in.
    path = tmp_path / "tickets.sqlite3"
    store = DurableReplayStore(path)
    assert await store.claim("j1", time.time() + 30)
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT jti FROM used_jti").fetchall()
    assert rows == [("j1",)]
    await store.close()


async def test_durable_store_forgets_expired_jtis_on_load(tmp_path: Path) -> None:
    path = tmp_path / "tickets.sqlite3"
    clock = [NOW]
    store = DurableReplayStore(path, clock=lambda: clock[0])
    assert await store.claim("short", NOW + 5)
    assert await store.claim("long", NOW + 25)
    await store.close()
    clock[0] = NOW + 10
    store = DurableReplayStore(path, clock=lambda: clock[0])
    assert not await store.claim("long", NOW + 25)
    assert len(store) == 1
    await store.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT jti FROM used_jti").fetchall() == [("long",)]


async def test_concurrent_claims_are_one_batch_each_answered_once(tmp_path: Path) -> None:
    store = DurableReplayStore(tmp_path / "tickets.sqlite3")
    exp = time.time() + 30
    jtis = [f"j{i % 50}" for i in range(200)]
    results = await asyncio.gather(*(store.claim(jti, exp) for jti in jtis))
    assert results.count(True) == 50
    await store.close()
    reopened = DurableReplayStore(tmp_path / "tickets.sqlite3")
    assert len(await asyncio.gather(reopened.claim("x", exp))) == 1
    assert len(reopened) == 51
    await reopened.close()


async def test_unusable_journal_fails_closed(tmp_path: Path) -> None:
    path = tmp_path / "tickets.sqlite3"
    path.mkdir()  # a directory where the file should be: sqlite cannot open it
    store = DurableReplayStore(path)
    with pytest.raises(ReplayStoreUnavailable) as info:
        await store.claim("j", time.time() + 30)
    assert info.value.reason == "replay_store_unavailable"
    await store.close()


async def test_check_ticket_with_the_durable_store(tmp_path: Path) -> None:
    store = DurableReplayStore(tmp_path / "tickets.sqlite3")
    token = mint_ticket(secret=SECRET, sub="p1")
    assert (await check_ticket(token, secret=SECRET, store=store)).sub == "p1"
    await store.close()
    store = DurableReplayStore(tmp_path / "tickets.sqlite3")
    with pytest.raises(TicketRejected) as info:
        await check_ticket(token, secret=SECRET, store=store)
    assert info.value.reason == "replayed"
    await store.close()


@pytest.fixture
async def redis_client(redis_url: str) -> AsyncIterator[redis.asyncio.Redis]:
    client = redis.asyncio.Redis.from_url(redis_url)
    try:
        yield client
    finally:
        await client.aclose()


async def test_redis_store_replay(redis_client: redis.asyncio.Redis) -> None:
    store = RedisReplayStore(redis_client, prefix="test:jti:")
    now = time.time()
    jti = unique_jti()
    token = mint_ticket(secret=SECRET, sub="p2", ttl_s=20, now=now, jti=jti)
    assert (await check_ticket(token, secret=SECRET, store=store, max_age_s=30)).jti == jti
    with pytest.raises(TicketRejected) as info:
        await check_ticket(token, secret=SECRET, store=store, max_age_s=30)
    assert info.value.reason == "replayed"
    # The key expires with the ticket (EXAT), not later.
    expire_at = await redis_client.expiretime(f"test:jti:{jti}")
    assert int(now) + 19 <= expire_at <= int(now) + 21
    await redis_client.delete(f"test:jti:{jti}")


async def test_redis_store_claim_is_atomic(redis_client: redis.asyncio.Redis) -> None:
    store = RedisReplayStore(redis_client, prefix="test:jti:")
    jti = unique_jti()
    results = await asyncio.gather(*(store.claim(jti, time.time() + 30) for _ in range(20)))
    assert results.count(True) == 1
    await redis_client.delete(f"test:jti:{jti}")


async def test_two_processes_on_one_journal_do_not_both_accept(tmp_path: Path) -> None:
    # Two stores on one file stand for two processes sharing a var dir.
    path = tmp_path / "tickets.sqlite3"
    one, two = DurableReplayStore(path), DurableReplayStore(path)
    exp = time.time() + 30
    assert await one.claim("warm", exp)
    assert await two.claim("shared", exp)
    assert not await one.claim("shared", exp)  # not in one's memory, but in the file
    await one.close()
    await two.close()

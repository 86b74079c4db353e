"""The session store on its real L2 backends: SQLite, a single Redis, a Redis Cluster."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio
from redis.asyncio.cluster import RedisCluster

import gameproto as p
from gamebackend.gateway.session import Session
from gamebackend.gateway.sessionstore import SessionStore, decode_record
from gamebackend.gateway.sessionstore.invalidation import RedisInvalidator
from gamebackend.gateway.sessionstore.record import decode_message
from gamebackend.gateway.sessionstore.redis_l2 import (
    RedisL2,
    player_key,
    redis_client,
    session_key,
)
from gamebackend.gateway.sessionstore.sqlite_l2 import SqliteL2
from tests.redis_cluster import redis_cluster_url  # noqa: F401 - fixture

TTL_S = 60
FLUSH_S = 0.005
# Bounds the wait for a published invalidation to come back through Redis.
EVENT_BOUND_S = 5.0


async def _no_overflow(session: Session) -> None:
    raise AssertionError("no test here overflows the outbox")


def new_session(store: SessionStore, player: str | None = None) -> Session:
    session = Session(
        player_id=player or f"p{uuid.uuid4().hex[:8]}",
        outbox_max=64,
        on_overflow=_no_overflow,
        changed=store.changed,
    )
    store.started(session)
    return session


def state(x: float) -> p.State:
    return p.State(seq=0, player_id="p", x=x, y=0.0, rev=int(x))


StoreFactory = Callable[[], SessionStore]


@pytest.fixture(params=["sqlite", "redis", "redis-cluster"])
async def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[StoreFactory]:
    """Stores (one per simulated node) sharing one L2 of the parametrised kind."""
    clients: list[Any] = []
    stores: list[SessionStore] = []

    def l2() -> Any:
        if request.param == "sqlite":
            return SqliteL2(tmp_path / "sessions.sqlite3", ttl_s=TTL_S)
        if request.param == "redis":
            url = request.getfixturevalue("redis_url")
            client = redis_client(url, cluster=False)
        else:
            url = request.getfixturevalue("redis_cluster_url")
            client = redis_client(url, cluster=True)
        clients.append(client)
        return RedisL2(client, ttl_s=TTL_S)

    def factory() -> SessionStore:
        store = SessionStore(
            l2(), node_id=f"n{len(stores)}", l1_size=100, l1_ttl_s=30.0, flush_s=FLUSH_S
        )
        stores.append(store)
        return store

    yield factory
    for store in stores:
        await store.close()
    for client in clients:
        await client.aclose()


async def test_the_message_path_only_marks_and_one_batch_writes_everything(
    make_store: StoreFactory,
) -> None:
    store = make_store()
    sessions = [new_session(store) for _ in range(50)]
    for session in sessions:
        for i in range(5):
            await session.emit(state(i))
    assert store.stats.batches == 0  # nothing was written on the message path
    assert await store.flush() == 50 + 50  # 50 records and 50 players' current sessions
    assert store.stats.batches == 1
    reader = make_store()  # another node: no L1 copy
    for session in sessions:
        record = await reader.load(session.session_id, session.player_id)
        assert record is not None
        assert (record.last_seq, record.acked_seq, len(record.items)) == (5, 0, 5)
        assert [decode_message(f).seq for f in record.items] == [1, 2, 3, 4, 5]
        assert decode_message(record.items[-1]) == session.outbox.items_after(4)[0]
    assert reader.stats.l2_reads == 50


async def test_acknowledged_messages_leave_the_stored_outbox(make_store: StoreFactory) -> None:
    store = make_store()
    session = new_session(store)
    for i in range(6):
        await session.emit(state(i))
    await store.flush()
    assert session.ack(4)
    await store.flush()
    record = await make_store().load(session.session_id, session.player_id)
    assert record is not None
    assert (record.last_seq, record.acked_seq) == (6, 4)
    assert [decode_message(f).seq for f in record.items] == [5, 6]


async def test_an_ended_session_is_gone_at_once_and_from_l2_after_the_batch(
    make_store: StoreFactory,
) -> None:
    store = make_store()
    session = new_session(store)
    await session.emit(state(1))
    await store.flush()
    assert await store.load(session.session_id, session.player_id) is not None
    store.ended(session)
    # Not yet written, already not resumable here.
    assert await store.load(session.session_id, session.player_id) is None
    await store.flush()
    assert await make_store().load(session.session_id, session.player_id) is None


async def test_a_newer_session_of_the_player_makes_the_older_one_unresumable(
    make_store: StoreFactory,
) -> None:
    store = make_store()
    old = new_session(store)
    await old.emit(state(1))
    await store.flush()
    other_node = make_store()
    newer = new_session(other_node, player=old.player_id)
    await newer.emit(state(2))
    await other_node.flush()  # the player's current session is now the newer one
    assert await make_store().load(old.session_id, old.player_id) is None
    assert await make_store().load(newer.session_id, newer.player_id) is not None


async def test_l1_answers_repeated_loads_and_forgets_on_invalidation(
    make_store: StoreFactory,
) -> None:
    writer, reader = make_store(), make_store()
    session = new_session(writer)
    await session.emit(state(1))
    await writer.flush()
    assert await reader.load(session.session_id, session.player_id) is not None
    assert await reader.load(session.session_id, session.player_id) is not None
    assert (reader.stats.l2_reads, reader.stats.l1_hits) == (1, 1)
    reader.invalidate(session.session_id)
    assert session.session_id not in reader.l1
    await reader.load(session.session_id, session.player_id)
    assert reader.stats.l2_reads == 2


async def test_a_takeover_waits_for_the_previous_nodes_sealed_record(
    make_store: StoreFactory,
) -> None:
    old_node, new_node = make_store(), make_store()
    old_node.start()  # its writer task flushes every FLUSH_S
    session = new_session(old_node)
    await session.emit(state(1))
    await old_node.flush()
    await session.emit(state(2))  # not written yet when the takeover starts
    loading = asyncio.create_task(
        new_node.load(session.session_id, session.player_id, after_handoff=True)
    )
    old_node.sealed(session)  # the handoff: the old node writes the final record now
    record = await loading
    assert record is not None
    assert (record.sealed, record.last_seq) == (True, 2)


async def test_another_players_session_is_not_loaded(make_store: StoreFactory) -> None:
    store = make_store()
    session = new_session(store)
    await session.emit(state(1))
    await store.flush()
    assert await make_store().load(session.session_id, "someone-else") is None


async def test_a_failed_write_is_retried_by_the_next_batch(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    store = SessionStore(
        SqliteL2(blocker / "sessions.sqlite3", ttl_s=TTL_S),
        node_id="n", l1_size=10, l1_ttl_s=30.0, flush_s=FLUSH_S,
    )  # fmt: skip
    session = new_session(store)
    await session.emit(state(1))
    with pytest.raises(FileExistsError, match="not-a-directory"):
        await store.flush()
    # Kept for the next batch (here: the file becomes writable).
    blocker.unlink()
    store.l2 = SqliteL2(blocker / "sessions.sqlite3", ttl_s=TTL_S)
    assert await store.flush() == 2
    await store.close()


async def test_redis_keys_of_a_session_share_its_hash_tag_and_expire(redis_url: str) -> None:
    client = redis.asyncio.from_url(redis_url)
    store = SessionStore(
        RedisL2(client, ttl_s=TTL_S), node_id="n", l1_size=10, l1_ttl_s=30.0, flush_s=FLUSH_S
    )
    session = new_session(store)
    await session.emit(state(1))
    await store.flush()
    key = session_key(session.session_id)
    assert key == f"game:session:{{{session.session_id}}}"
    assert 0 < await client.ttl(key) <= TTL_S
    assert 0 < await client.ttl(player_key(session.player_id)) <= TTL_S
    raw = await client.get(key)
    assert isinstance(raw, bytes)
    assert decode_record(raw).player_id == session.player_id
    await store.close()
    await client.aclose()


async def test_on_the_cluster_a_batch_spans_every_master(redis_cluster_url: str) -> None:  # noqa: F811
    client = RedisCluster.from_url(redis_cluster_url)
    store = SessionStore(
        RedisL2(client, ttl_s=TTL_S), node_id="n", l1_size=10, l1_ttl_s=30.0, flush_s=FLUSH_S
    )
    sessions = [new_session(store) for _ in range(30)]
    for session in sessions:
        await session.emit(state(1))
    await store.flush()
    masters = {
        client.get_node_from_key(session_key(s.session_id)).name  # type: ignore[union-attr]
        for s in sessions
    }
    assert len(masters) == 3  # the sessions' keys really are spread over the cluster
    for session in sessions:
        slot = client.keyslot(session_key(session.session_id))
        assert slot == client.keyslot(session.session_id)  # the hash tag decides the slot
    reader = SessionStore(
        RedisL2(client, ttl_s=TTL_S), node_id="m", l1_size=10, l1_ttl_s=30.0, flush_s=FLUSH_S
    )
    for session in sessions:
        assert await reader.load(session.session_id, session.player_id) is not None
    await store.close()
    await client.aclose()


async def test_invalidations_from_another_node_arrive_and_own_ones_do_not(
    redis_url: str,
) -> None:
    client = redis.asyncio.from_url(redis_url)
    heard_a: list[str] = []
    heard_b: asyncio.Queue[str] = asyncio.Queue()
    node_a = RedisInvalidator(client, "a", heard_a.append)
    node_b = RedisInvalidator(client, "b", heard_b.put_nowait)
    node_a.start()
    node_b.start()
    async with asyncio.timeout(EVENT_BOUND_S):
        await node_a.subscribed.wait()
        await node_b.subscribed.wait()
        await node_a.publish("s1")
        assert await heard_b.get() == "s1"
    assert heard_a == []
    await node_a.close()
    await node_b.close()
    await client.aclose()

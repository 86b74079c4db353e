"""L2 in Redis (cluster profile): a single Redis or a Redis Cluster (redis-py's client).

Keys are Redis-Cluster-safe: every key of one session carries the session id as its hash
tag (``game:session:{<sid>}``) and every key of one player the player id
(``game:session:player:{<pid>}``), so a session's keys always live in one slot. A batch is
one non-transactional pipeline: one round trip per master it touches.
"""

from __future__ import annotations

from typing import Any

from gamebackend.gateway.sessionstore.store import WriteBatch

SESSION_KEY = "game:session:{%s}"
PLAYER_KEY = "game:session:player:{%s}"


def session_key(session_id: str) -> str:
    return SESSION_KEY % session_id


def player_key(player_id: str) -> str:
    return PLAYER_KEY % player_id


class RedisL2:
    def __init__(self, client: Any, *, ttl_s: int) -> None:
        # redis.asyncio.Redis or redis.asyncio.cluster.RedisCluster: the same calls.
        self._client = client
        self._ttl_s = ttl_s

    async def write(self, batch: WriteBatch) -> None:
        ttl = self._ttl_s
        pipe = self._client.pipeline(transaction=False)
        for sid, _player, data in batch.puts:
            pipe.set(session_key(sid), data, ex=ttl)
        for sid in batch.deletes:
            pipe.delete(session_key(sid))
        for player, sid in batch.currents:
            pipe.set(player_key(player), sid, ex=ttl)
        await pipe.execute()

    async def load(self, session_id: str, player_id: str) -> tuple[bytes | None, str | None]:
        pipe = self._client.pipeline(transaction=False)
        pipe.get(session_key(session_id))
        pipe.get(player_key(player_id))
        raw, current = await pipe.execute()
        if isinstance(current, bytes):
            current = current.decode()
        return raw, current

    async def close(self) -> None:
        return None  # the client belongs to the runtime


def redis_client(url: str, *, cluster: bool) -> Any:
    """An asyncio client for ``url``: a Redis Cluster client when ``cluster``."""
    if cluster:
        from redis.asyncio.cluster import RedisCluster

        return RedisCluster.from_url(url)
    import redis.asyncio as aioredis

    return aioredis.from_url(url)

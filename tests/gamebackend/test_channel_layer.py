"""A message's round trip through the channel layer of each profile."""

from __future__ import annotations

import uuid

import pytest
from channels.layers import InMemoryChannelLayer
from channels_redis.core import RedisChannelLayer


async def assert_round_trip(layer) -> None:
    channel = await layer.new_channel("test.")
    await layer.send(channel, {"type": "game.hello", "n": 1})
    await layer.send(channel, {"type": "game.hello", "n": 2})
    assert await layer.receive(channel) == {"type": "game.hello", "n": 1}
    assert await layer.receive(channel) == {"type": "game.hello", "n": 2}
    # Groups fan out to every member.
    group = f"g{uuid.uuid4().hex}"
    other = await layer.new_channel("test.")
    await layer.group_add(group, channel)
    await layer.group_add(group, other)
    await layer.group_send(group, {"type": "game.broadcast"})
    assert await layer.receive(channel) == {"type": "game.broadcast"}
    assert await layer.receive(other) == {"type": "game.broadcast"}
    await layer.group_discard(group, channel)
    await layer.group_discard(group, other)


async def test_in_memory_layer_round_trip() -> None:
    await assert_round_trip(InMemoryChannelLayer())


@pytest.mark.cluster
async def test_redis_layer_round_trip(redis_url: str) -> None:
    layer = RedisChannelLayer(hosts=[redis_url], prefix=f"test{uuid.uuid4().hex[:8]}")
    try:
        await assert_round_trip(layer)
    finally:
        await layer.flush()
        await layer.close_pools()

"""Readiness checks against the real services they check."""

from __future__ import annotations

import asyncio
import contextlib
import uuid

import pytest
from channels_redis.core import RedisChannelLayer

from gamebackend.health import checks

# The test gives the receiver this long to reach its blocking pop; it holds the layer's
# receive turn from then until a message comes or its pop times out.
RECEIVER_BLOCKED_TIMEOUT_S = 5.0


async def test_channel_layer_check_answers_while_another_receive_holds_the_turn(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As on a cluster node: the event fan-out waits on a process-local channel all the time.
    layer = RedisChannelLayer(hosts=[redis_url], prefix=f"test{uuid.uuid4().hex[:8]}")
    monkeypatch.setattr(checks, "get_channel_layer", lambda: layer)
    fanout_channel = await layer.new_channel("events.")
    receiver = asyncio.ensure_future(layer.receive(fanout_channel))
    try:
        async with asyncio.timeout(RECEIVER_BLOCKED_TIMEOUT_S):
            while layer.receive_lock is None or not layer.receive_lock.locked():
                await asyncio.sleep(0)
        # Answered within the check's own bound although the turn is held for 5 s.
        result = await asyncio.wait_for(checks.check_channel_layer(), checks.CHECK_TIMEOUT_S)
        assert result == checks.OK
        assert not receiver.done()
    finally:
        receiver.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await receiver
        await layer.flush()
        await layer.close_pools()

"""Which node holds each player (cluster profile): one live PlayerActor per player.

When a player connects to node B while node A still holds them, B takes the entry over
and asks A's PlayerActor to hand the live state over (A closes its connection with 4409
and stops). Without it, two nodes could each run an actor for the same player.
"""

from __future__ import annotations

from typing import Any

KEY_PREFIX = "game:player:node:"
# An entry outlives a crashed node at most this long (a new owner takes it over anyway).
ENTRY_TTL_S = 24 * 3600

# Delete the entry only while it still names this node: a newer owner's entry stays.
_RELEASE_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class PlayerDirectory:
    def __init__(self, redis: Any, node_id: str) -> None:
        self._redis = redis
        self._node_id = node_id
        self._release = redis.register_script(_RELEASE_LUA)

    async def claim(self, player_id: str) -> str | None:
        """Record this node as the player's; returns the previous node, if another one."""
        previous = await self._redis.set(
            KEY_PREFIX + player_id, self._node_id, ex=ENTRY_TTL_S, get=True
        )
        if previous is None:
            return None
        node = previous.decode() if isinstance(previous, bytes) else str(previous)
        return None if node == self._node_id else node

    async def release(self, player_id: str) -> None:
        await self._release(keys=[KEY_PREFIX + player_id], args=[self._node_id])

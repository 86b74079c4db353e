"""Which node hosts each room (cluster profile): a Redis entry with a lease.

A room lives on one node. Its entry ``game:room:node:<room>`` names that node and expires
``lease_s`` after the last renewal; the hosting node renews every local room's lease in
one round trip every ``lease_s / 3``. A node that dies stops renewing: its rooms' entries
expire and the next ``join`` creates the room on another node. While a battle runs,
``game:room:battle:<room>`` names it; a room that stops cleanly deletes it, so a room
re-created while it still exists continues that battle from its replay log.

Plain module (a Redis client is handed in; no Django).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

__all__ = ["RoomDirectory"]

NODE_KEY: Final = "game:room:node:"
BATTLE_KEY: Final = "game:room:battle:"
# The running battle's id outlives a crashed node long enough for anyone to re-join.
BATTLE_KEY_TTL_S: Final = 24 * 3600
# Leases renewed per script call (keeps one call short on a busy Redis).
RENEW_BATCH: Final = 500

# Take the entry when it is free or already ours (a node restarted under the same id).
_CLAIM_LUA = """
local owner = redis.call('GET', KEYS[1])
if owner == false or owner == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
"""
# Renew every entry still ours (re-taking ones that expired meanwhile if nobody else
# took them); return the keys another node holds now.
_RENEW_LUA = """
local lost = {}
for _, key in ipairs(KEYS) do
  local owner = redis.call('GET', key)
  if owner == ARGV[1] or owner == false then
    redis.call('SET', key, ARGV[1], 'PX', ARGV[2])
  else
    table.insert(lost, key)
  end
end
return lost
"""
# Delete only while the value is still ours.
_RELEASE_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return value.decode() if isinstance(value, bytes) else str(value)


class RoomDirectory:
    def __init__(self, redis: Any, node_id: str, lease_s: float) -> None:
        self._redis = redis
        self.node_id = node_id
        self.lease_ms = max(1, int(lease_s * 1000))
        self._claim = redis.register_script(_CLAIM_LUA)
        self._renew = redis.register_script(_RENEW_LUA)
        self._release = redis.register_script(_RELEASE_LUA)

    async def owner(self, room_id: str) -> str | None:
        """The node hosting ``room_id`` (None: nobody, e.g. its node died)."""
        return _text(await self._redis.get(NODE_KEY + room_id))

    async def claim(self, room_id: str) -> bool:
        """Make this node the room's host if nobody else is; True when it is now."""
        claimed = await self._claim(keys=[NODE_KEY + room_id], args=[self.node_id, self.lease_ms])
        return bool(claimed)

    async def renew(self, room_ids: Sequence[str]) -> list[str]:
        """Renew the leases of this node's rooms; the rooms another node holds now."""
        lost: list[str] = []
        for start in range(0, len(room_ids), RENEW_BATCH):
            keys = [NODE_KEY + room for room in room_ids[start : start + RENEW_BATCH]]
            taken = await self._renew(keys=keys, args=[self.node_id, self.lease_ms])
            lost.extend((_text(key) or "")[len(NODE_KEY) :] for key in taken)
        return lost

    async def release(self, room_id: str) -> None:
        await self._release(keys=[NODE_KEY + room_id], args=[self.node_id])

    async def battle(self, room_id: str) -> str | None:
        """The battle still running in ``room_id`` (its host died before it ended)."""
        return _text(await self._redis.get(BATTLE_KEY + room_id))

    async def start_battle(self, room_id: str, battle_id: str) -> None:
        await self._redis.set(BATTLE_KEY + room_id, battle_id, ex=BATTLE_KEY_TTL_S)

    async def end_battle(self, room_id: str, battle_id: str) -> None:
        await self._release(keys=[BATTLE_KEY + room_id], args=[battle_id])

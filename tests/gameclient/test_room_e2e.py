"""The SDK's `Room` against a real node: two clients play the demo sim in lockstep."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from gameclient import DEMO, Backoff, GameClient, Room, RoomCreate
from gameproto.sims import DemoState
from tests.nodes import Node

pytestmark = pytest.mark.slow

FAST_BACKOFF = Backoff(base_s=0.01, cap_s=0.05)
FRAMES = 40
PLAY_TIMEOUT_S = 20.0


def client_for(node: Node, player: str) -> GameClient:
    async def ticket() -> str:
        return node.ticket(player)

    return GameClient(node.ws_url, ticket, backoff=FAST_BACKOFF)


async def play(client: GameClient, room: Room[DemoState], keys: int, until_tick: int) -> None:
    """Feed the room every push; send an input per frame received, until ``until_tick``."""
    while room.next_tick <= until_tick:
        msg = await client.recv()
        before = room.next_tick
        if await room.handle(msg) and room.next_tick > before:
            await room.send_input(keys)


async def test_two_sdk_clients_stay_in_step_and_report_matching_digests(node: Node) -> None:
    room_id = f"sdk-{uuid.uuid4().hex[:8]}"
    async with (
        client_for(node, f"a{uuid.uuid4().hex[:8]}") as a,
        client_for(node, f"b{uuid.uuid4().hex[:8]}") as b,
    ):
        room_a: Room[DemoState] = Room(a, room_id, sim=DEMO, hash_every=5)
        room_b: Room[DemoState] = Room(b, room_id, sim=DEMO, hash_every=5)
        joined_a = await room_a.join(RoomCreate(sim="demo", tick_rate=30, input_delay=1))
        joined_b = await room_b.join()
        assert joined_b.tick >= joined_a.tick
        assert room_b.members == [a.welcome.player_id, b.welcome.player_id]  # type: ignore[union-attr]
        until = joined_b.tick + FRAMES
        await asyncio.wait_for(
            asyncio.gather(play(a, room_a, 8, until), play(b, room_b, 2, until)), PLAY_TIMEOUT_S
        )
        # Both applied the same confirmed frames, one at a time: same tick, same state.
        # Their frame lists start where each joined, and a tick may close between the two
        # joins: compare from the later start.
        assert room_a.next_tick == room_b.next_tick == until + 1
        assert room_a.state == room_b.state
        first = max(room_a.frames[0].tick, room_b.frames[0].tick)
        frames_a = [(f.tick, f.inputs) for f in room_a.frames if f.tick >= first]
        frames_b = [(f.tick, f.inputs) for f in room_b.frames if f.tick >= first]
        assert frames_a == frames_b
        assert len(frames_a) >= FRAMES - 2
        assert room_a.hashes_sent > 0
        assert room_b.hashes_sent > 0
        # Each moved as its keys say, starting where the late joiner's state put it.
        pid_a, pid_b = a.welcome.player_id, b.welcome.player_id  # type: ignore[union-attr]
        state = room_b.state
        assert state is not None
        start = DEMO.from_data(joined_b.state.data)  # type: ignore[union-attr]
        ticks_a = sum(1 for f in room_b.frames if (pid_a, 8) in [tuple(x) for x in f.inputs])
        ticks_b = sum(1 for f in room_b.frames if (pid_b, 2) in [tuple(x) for x in f.inputs])
        assert ticks_a > 0
        assert ticks_b > 0
        for pid, moves, axis in ((pid_a, ticks_a, 0), (pid_b, ticks_b, 1)):
            # Where it was at b's join, or where it spawns with its first input.
            origin = start.players.get(pid) or DEMO.step(DEMO.initial(), 0, [(pid, 0)]).players[pid]
            assert state.players[pid][axis] == (origin[axis] + moves) % 64
            assert state.players[pid][1 - axis] == origin[1 - axis]
        assert room_a.view().mode in ("interpolate", "predict")
        # The server compared every reported digest with its own simulation.
        assert room_a.desyncs == []
        assert room_b.desyncs == []
        await room_b.leave()
        left = await a.recv()
        while not (await room_a.handle(left) and b.welcome.player_id not in room_a.members):  # type: ignore[union-attr]
            left = await a.recv()

"""`Room`: one room of a `GameClient` (join/leave, inputs, frames, prediction, hashes).

    room = Room(client, "arena", sim=DEMO, hash_every=10)
    await room.join(create=RoomCreate(sim="demo"))
    async for msg in client:
        if await room.handle(msg):   # frames, members, chat, desync of this room
            ...
        await room.send_input(keys)  # aimed at the next tick + the room's input delay
        view = room.view()           # what to draw (interpolated or predicted)

The app reads the client's pushes and hands each to `room.handle`; nothing runs in the
background. After a new session (`welcome` with `resumed: false`), or a session restored
on another node (`restored: true`), the room joins again by itself; a gap in the frames
(which the reliable stream should never produce) is filled with `sync`, or by joining
again when the history no longer reaches back.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Any, Final, Generic, TypeVar

from gameproto import (
    ChatMessage,
    Desync,
    Frame,
    Frames,
    Hash,
    Input,
    Join,
    Joined,
    Leave,
    MemberJoined,
    MemberLeft,
    RoomCreate,
    Sync,
    Welcome,
)
from gameproto.sims import Simulation

from ._client import GameClient
from ._errors import GameError
from ._lockstep import ROLLBACK_AFTER_S, InputBuffer, Lockstep, View

__all__ = ["Room"]

logger = logging.getLogger("gameclient.room")

S = TypeVar("S")
# Recent confirmed frames kept for the app (the server's history is 128 as well).
RECENT_FRAMES: Final = 128
# Report a digest every this many ticks by default (0 turns reporting off).
DEFAULT_HASH_EVERY: Final = 10
SYNC_TOO_OLD: Final = "sync_too_old"
# No frame for this long (or this many tick periods, whichever is longer) means the room
# is gone (e.g. its node died): join again, which re-creates it.
STALL_S: Final = 1.0
STALL_TICKS: Final = 10


class Room(Generic[S]):
    def __init__(
        self,
        client: GameClient,
        room_id: str,
        *,
        sim: Simulation[S] | None = None,
        hash_every: int = DEFAULT_HASH_EVERY,
        rollback_after_s: float = ROLLBACK_AFTER_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.room_id = room_id
        self.sim = sim
        self.hash_every = hash_every
        self.rollback_after_s = rollback_after_s
        self._clock = clock
        self.joined: Joined | None = None
        self.members: list[str] = []
        self.frames: deque[Frame] = deque(maxlen=RECENT_FRAMES)
        self.chat: deque[ChatMessage] = deque(maxlen=RECENT_FRAMES)
        self.desyncs: list[Desync] = []
        self.inputs = InputBuffer()
        self.lockstep: Lockstep[S] | None = None
        self.next_tick = 0  # the next frame this room expects
        self.hashes_sent = 0
        self._create: RoomCreate | None = None
        self._last_frame_at = 0.0
        # The session the room joined on: its own welcome, met later in the app's queue of
        # pushes, is no news (only a new or restored session makes the room join again).
        self._joined_session: str | None = None

    # -- requests ------------------------------------------------------------------------

    async def join(self, create: RoomCreate | None = None) -> Joined:
        """Join (creating the room with ``create`` if it does not exist)."""
        self._create = create or self._create
        reply = await self.client.request(Join(room=self.room_id, create=self._create))
        assert isinstance(reply, Joined)
        self._on_joined(reply)
        return reply

    async def leave(self) -> None:
        await self.client.request(Leave(room=self.room_id))
        self.joined = None
        self.lockstep = None

    async def send_input(self, keys: int) -> int:
        """Send ``keys`` for the next tick plus the room's input delay; returns that tick."""
        joined = self.joined
        if joined is None:
            raise RuntimeError("join the room first")
        now = self._clock()
        lockstep = self.lockstep
        if lockstep is not None:
            tick = lockstep.input_tick(now, joined.input_delay)
            lockstep.on_input(tick, keys)
        else:
            tick = self.next_tick + joined.input_delay
            self.inputs.put(tick, keys)
        await self.client.send(Input(room=self.room_id, tick=tick, keys=keys))
        return tick

    async def sync(self, from_tick: int) -> Frames:
        reply = await self.client.request(Sync(room=self.room_id, from_tick=from_tick))
        assert isinstance(reply, Frames)
        return reply

    # -- pushes --------------------------------------------------------------------------

    async def handle(self, msg: Any) -> bool:
        """Take a server push; True when it belonged to this room (or re-joined it)."""
        if isinstance(msg, Welcome):
            if self.joined is None:
                return False
            if msg.restored or (not msg.resumed and msg.session_id != self._joined_session):
                # A new session left every room; a session restored on another node is in
                # the room on the old node's terms (the room sends there): join again (the
                # state comes with it).
                await self.join()
                return True
            return False
        if getattr(msg, "room", None) != self.room_id or self.joined is None:
            return False
        if isinstance(msg, Frame):
            await self._on_frame(msg)
        elif isinstance(msg, MemberJoined):
            if msg.player_id not in self.members:
                self.members.append(msg.player_id)
        elif isinstance(msg, MemberLeft):
            if msg.player_id in self.members:
                self.members.remove(msg.player_id)
        elif isinstance(msg, ChatMessage):
            self.chat.append(msg)
        elif isinstance(msg, Desync):
            logger.warning("room %s: desync at tick %d: %s", self.room_id, msg.tick, msg.digests)
            self.desyncs.append(msg)
        else:
            return False
        return True

    def stalled(self, now: float | None = None) -> bool:
        """True when no frame came for a while: the room is gone, `join` it again."""
        joined = self.joined
        if joined is None:
            return False
        now = self._clock() if now is None else now
        return now - self._last_frame_at > max(STALL_S, STALL_TICKS / joined.tick_rate)

    def view(self, now: float | None = None) -> View[S]:
        """What to draw now (see `Lockstep.view`); needs a simulation."""
        if self.lockstep is None:
            raise RuntimeError("no simulation: join a room with a sim first")
        return self.lockstep.view(self._clock() if now is None else now)

    @property
    def state(self) -> S | None:
        """The confirmed simulation state (after closing ``next_tick - 1``)."""
        return None if self.lockstep is None else self.lockstep.state

    # -- internals -----------------------------------------------------------------------

    def _on_joined(self, reply: Joined) -> None:
        self.joined = reply
        welcome = self.client.welcome
        self._joined_session = welcome.session_id if welcome is not None else None
        self.members = list(reply.members)
        self.next_tick = reply.tick
        self._last_frame_at = self._clock()
        self.frames.clear()
        self.lockstep = None
        sim = self.sim
        if sim is not None and reply.state is not None:
            self.lockstep = Lockstep(
                sim,
                player_id=self.client.welcome.player_id if self.client.welcome else "",
                tick_rate=reply.tick_rate,
                tick=reply.state.tick,
                state=sim.from_data(reply.state.data),
                now=self._clock(),
                rollback_after_s=self.rollback_after_s,
                buffer=self.inputs,
            )

    async def _on_frame(self, frame: Frame) -> None:
        if frame.tick < self.next_tick:
            return  # already applied (e.g. from a sync)
        if frame.tick > self.next_tick:
            await self._fill_gap(frame.tick)
            if frame.tick != self.next_tick:
                return  # re-joined instead: this frame is older than the new state
        self._apply(frame.tick, frame.inputs)
        self._last_frame_at = self._clock()
        self.frames.append(frame)
        await self._maybe_hash(frame.tick)

    def _apply(self, tick: int, inputs: Any) -> None:
        if self.lockstep is not None:
            self.lockstep.confirm(tick, inputs, self._clock())
        self.next_tick = tick + 1

    async def _fill_gap(self, upto: int) -> None:
        try:
            frames = await self.sync(self.next_tick)
        except GameError as exc:
            if exc.code != SYNC_TOO_OLD:
                raise
            await self.join()
            return
        for entry in frames.frames:
            if self.next_tick <= entry.tick < upto:
                self._apply(entry.tick, entry.inputs)
                await self._maybe_hash(entry.tick)

    async def _maybe_hash(self, tick: int) -> None:
        lockstep = self.lockstep
        if lockstep is None or self.hash_every <= 0 or (tick + 1) % self.hash_every:
            return
        digest = lockstep.sim.digest(lockstep.state)
        await self.client.send(Hash(room=self.room_id, tick=tick, h=digest))
        self.hashes_sent += 1

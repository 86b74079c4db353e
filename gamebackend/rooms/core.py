"""One room's lockstep state and rules, as pure logic (no actors, no I/O, no Django).

The ``RoomActor`` owns a ``RoomCore`` and turns its results into deliveries. Every method
either raises ``RoomError`` (nothing changed) or applies its change completely and
returns what to send (``Out``: a recipient, or None for every member, and a message), so
the core is consistent at every message boundary: a restarted actor resumes from it.

Ticks: ``next_tick`` is the next frame the room closes. Inputs aimed at a tick from
``next_tick`` up to ``next_tick + MAX_INPUT_AHEAD`` wait in ``pending``; closing tick ``t``
turns them into the frame ``t`` (inputs sorted by player id), appends it to the 128-frame
history and the replay log, and steps the simulation if the room has one.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import gameproto as p
from gamebackend.rooms import counters
from gamebackend.rooms.version import RoomVersion
from gameproto.rooms import (
    DEFAULT_INPUT_DELAY,
    DEFAULT_LATE_POLICY,
    DEFAULT_MAX_PLAYERS,
    DEFAULT_TICK_RATE,
    MAX_INPUT_AHEAD,
    ROOM_HISTORY,
)
from gameproto.sims import Simulation

__all__ = ["Member", "Out", "RoomConfig", "RoomCore", "RoomError", "RoomMetrics", "Target"]

logger = logging.getLogger(__name__)

# Tick-jitter samples kept per room for its p50/p99 (a few minutes at 20 Hz).
JITTER_SAMPLES: Final = 4096

# A closed frame's inputs: a tuple of (player_id, keys) tuples, sorted. Tuples of atoms
# are untracked by the garbage collector, so thousands of rooms' 128-frame histories add
# nothing to its passes (lists here made full collections take hundreds of ms).
FrameInputs = tuple[tuple[str, int], ...]
# Closed frames a room's stats carry (the console's room page).
STATS_LAST_FRAMES = 5
NO_INPUTS: FrameInputs = ()
# (player_id, session_id): one member's stream; a new session of the player must re-join.
Target = tuple[str, str]
# What to send: (to, message, except): to one member (a player id), or to every member
# (None) but ``except`` (a player id, or None for nobody).
Out = tuple[str | None, p.ServerMessage, str | None]


class RoomError(Exception):
    """A request the room refuses; answered ``error {code, message, field?}``."""

    def __init__(self, code: str, message: str, field: str | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.field = field


@dataclass(frozen=True, slots=True)
class RoomConfig:
    room_id: str
    tick_rate: int = DEFAULT_TICK_RATE
    max_players: int = DEFAULT_MAX_PLAYERS
    input_delay: int = DEFAULT_INPUT_DELAY
    late_policy: str = DEFAULT_LATE_POLICY
    sim: str | None = None

    @classmethod
    def create(cls, room_id: str, options: p.RoomCreate | None) -> RoomConfig:
        if options is None:
            return cls(room_id)
        return cls(
            room_id,
            tick_rate=options.tick_rate,
            max_players=options.max_players,
            input_delay=options.input_delay,
            late_policy=options.late_policy,
            sim=options.sim,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "room": self.room_id,
            "tick_rate": self.tick_rate,
            "max_players": self.max_players,
            "input_delay": self.input_delay,
            "late_policy": self.late_policy,
            "sim": self.sim,
        }


@dataclass(slots=True)
class Member:
    player_id: str
    node: str
    session_id: str


@dataclass(slots=True)
class RoomMetrics:
    """What the room records about itself (``snapshot`` for stats pages and logs)."""

    ticks: int = 0
    inputs: int = 0
    late_inputs: int = 0
    late_dropped: int = 0
    overruns: int = 0
    desyncs: int = 0
    jitter_s: deque[float] = field(default_factory=lambda: deque(maxlen=JITTER_SAMPLES))

    def snapshot(self) -> dict[str, Any]:
        samples = sorted(self.jitter_s)
        return {
            "ticks": self.ticks,
            "inputs": self.inputs,
            "late_inputs": self.late_inputs,
            "late_dropped": self.late_dropped,
            "overruns": self.overruns,
            "desyncs": self.desyncs,
            "jitter_p50_ms": _percentile(samples, 0.50) * 1000.0,
            "jitter_p99_ms": _percentile(samples, 0.99) * 1000.0,
        }


def _percentile(sorted_samples: Sequence[float], q: float) -> float:
    if not sorted_samples:
        return 0.0
    index = min(len(sorted_samples) - 1, int(q * len(sorted_samples)))
    return sorted_samples[index]


class RoomCore:
    def __init__(
        self,
        config: RoomConfig,
        *,
        battle_id: str,
        sim: Simulation[Any] | None = None,
        next_tick: int = 0,
        sim_state: Any = None,
        history: Iterable[tuple[int, Sequence[tuple[str, int]]]] = (),
    ) -> None:
        self.config = config
        self.room_id = config.room_id
        self.battle_id = battle_id
        self.sim = sim
        self.next_tick = next_tick
        self.members: dict[str, Member] = {}
        # Member streams grouped by node: the room sends each message once per node.
        self.by_node: dict[str, list[Target]] = {}
        self.pending: dict[int, dict[str, int]] = {}
        self.history: deque[tuple[int, FrameInputs]] = deque(
            ((tick, tuple(inputs)) for tick, inputs in history), maxlen=ROOM_HISTORY
        )
        # Closed frames not yet handed to the replay log's flush (all of them, in order).
        self.log: list[tuple[int, FrameInputs]] = []
        self.log_first = next_tick
        self.metrics = RoomMetrics()
        # The simulation's current immutable version (None without a sim); every closed
        # tick replaces it with a new one (copy-on-write; see rooms/version.py).
        self.version: RoomVersion | None = None
        # Simulation states after closing each recent tick (digests are computed lazily,
        # only for ticks someone reported a hash for).
        self._states: deque[tuple[int, Any]] = deque(maxlen=ROOM_HISTORY)
        self._digests: dict[int, int] = {}
        if sim is not None:
            self.version = self._version(
                next_tick, sim, sim.initial() if sim_state is None else sim_state
            )
            if next_tick > 0:
                self._states.append((next_tick - 1, self.state))
        self._hashes: dict[int, dict[str, int]] = {}
        self._desynced: set[int] = set()

    def _version(self, next_tick: int, sim: Simulation[Any], state: Any) -> RoomVersion:
        return RoomVersion(
            room_id=self.room_id,
            battle_id=self.battle_id,
            sim_name=self.config.sim or "",
            sim=sim,
            tick=next_tick,
            state=state,
        )

    @property
    def state(self) -> Any:
        """The simulation's current state (None without a sim)."""
        version = self.version
        return None if version is None else version.state

    # -- membership ----------------------------------------------------------------------

    def _regroup(self) -> None:
        by_node: dict[str, list[Target]] = {}
        for member in self.members.values():
            by_node.setdefault(member.node, []).append((member.player_id, member.session_id))
        self.by_node = by_node

    def target(self, player_id: str) -> tuple[str, Target] | None:
        member = self.members.get(player_id)
        if member is None:
            return None
        return member.node, (member.player_id, member.session_id)

    def join(self, player_id: str, node: str, session_id: str, re: p.RequestId) -> list[Out]:
        member = self.members.get(player_id)
        out: list[Out] = []
        if member is None:
            if len(self.members) >= self.config.max_players:
                raise RoomError(
                    p.ROOM_FULL, f"room {self.room_id} has {self.config.max_players} players"
                )
            joined = p.MemberJoined(
                seq=0, room=self.room_id, player_id=player_id, tick=self.next_tick
            )
            out.append((None, joined, player_id))
            self.members[player_id] = Member(player_id, node, session_id)
        else:
            # Joining again (maybe from a new session or node) re-binds the member's stream.
            member.node = node
            member.session_id = session_id
        self._regroup()
        out.append((player_id, self._joined(re), None))
        return out

    def _joined(self, re: p.RequestId) -> p.Joined:
        config = self.config
        snapshot = None
        if self.sim is not None:
            snapshot = p.RoomSnapshot(tick=self.next_tick, data=self.sim.to_data(self.state))
        return p.Joined(
            seq=0,
            room=self.room_id,
            tick_rate=config.tick_rate,
            tick=self.next_tick,
            input_delay=config.input_delay,
            late_policy=config.late_policy,
            max_players=config.max_players,
            members=list(self.members),
            sim=config.sim,
            state=snapshot,
            re=re,
        )

    def _require_member(self, player_id: str) -> None:
        if player_id not in self.members:
            raise RoomError(p.INVALID, f"not in room {self.room_id}", field="room")

    def leave(self, player_id: str, re: p.RequestId, *, quiet: bool = False) -> list[Out]:
        """``quiet``: the player's session ended; no answer, and no error if not a member."""
        if player_id not in self.members:
            if quiet:
                return []
            self._require_member(player_id)
        out: list[Out] = []
        if not quiet:
            out.append((player_id, p.Ok(seq=0, re=re), None))
        del self.members[player_id]
        self._regroup()
        for inputs in self.pending.values():
            inputs.pop(player_id, None)
        left = p.MemberLeft(seq=0, room=self.room_id, player_id=player_id, tick=self.next_tick)
        out.append((None, left, None))
        return out

    # -- inputs, sync, hashes, chat ------------------------------------------------------

    def input(self, player_id: str, tick: int, keys: int, re: p.RequestId) -> list[Out]:
        self._require_member(player_id)
        next_tick = self.next_tick
        if tick - next_tick > MAX_INPUT_AHEAD:
            raise RoomError(
                p.INVALID,
                f"tick {tick} is more than {MAX_INPUT_AHEAD} ticks ahead of the room's "
                f"next tick {next_tick}",
                field="tick",
            )
        metrics = self.metrics
        metrics.inputs += 1
        node = counters.totals
        node["inputs"] += 1
        if tick < next_tick:
            metrics.late_inputs += 1
            node["late_inputs"] += 1
            if self.config.late_policy == "drop":
                metrics.late_dropped += 1
                node["late_dropped"] += 1
                return self._ok(player_id, re)
            tick = next_tick  # "shift": the next open tick
        frame = self.pending.get(tick)
        if frame is None:
            frame = self.pending[tick] = {}
        frame[player_id] = keys  # a second input for the same tick replaces the first
        return self._ok(player_id, re)

    @staticmethod
    def _ok(player_id: str, re: p.RequestId) -> list[Out]:
        """Only a request (``id``) is answered ``ok``; a plain input needs no answer."""
        return [(player_id, p.Ok(seq=0, re=re), None)] if re is not None else []

    def sync(self, player_id: str, from_tick: int, re: p.RequestId) -> list[Out]:
        self._require_member(player_id)
        history = self.history
        if from_tick < self.next_tick and (not history or from_tick < history[0][0]):
            oldest = history[0][0] if history else self.next_tick
            raise RoomError(
                p.SYNC_TOO_OLD,
                f"tick {from_tick} is no longer in the room's history (oldest {oldest}); "
                "re-join to get the current tick",
                field="from_tick",
            )
        frames = [
            p.FrameEntry(tick=tick, inputs=inputs) for tick, inputs in history if tick >= from_tick
        ]
        return [(player_id, p.Frames(seq=0, room=self.room_id, frames=frames, re=re), None)]

    def chat(self, player_id: str, text: str, re: p.RequestId) -> list[Out]:
        self._require_member(player_id)
        room = self.room_id
        # The sender's own copy carries `re` (it answers the request); the others' do not.
        return [
            (
                player_id,
                p.ChatMessage(seq=0, room=room, player_id=player_id, text=text, re=re),
                None,
            ),
            (None, p.ChatMessage(seq=0, room=room, player_id=player_id, text=text), player_id),
        ]

    def server_digest(self, tick: int) -> int | None:
        """The simulation's digest after closing ``tick`` (None without a sim or history)."""
        sim = self.sim
        if sim is None:
            return None
        digest = self._digests.get(tick)
        if digest is not None:
            return digest
        for state_tick, state in self._states:
            if state_tick == tick:
                digest = self._digests[tick] = sim.digest(state)
                return digest
        return None

    def hash(self, player_id: str, tick: int, h: int, re: p.RequestId) -> list[Out]:
        """A member's digest of its state after ``tick``; a disagreement raises ``desync``."""
        self._require_member(player_id)
        history = self.history
        if tick >= self.next_tick or not history or tick < history[0][0]:
            raise RoomError(
                p.INVALID,
                f"tick {tick} is not a closed tick in the room's history "
                f"({history[0][0] if history else self.next_tick}..{self.next_tick - 1})",
                field="tick",
            )
        reported = self._hashes.get(tick)
        if reported is None:
            reported = self._hashes[tick] = {}
        reported[player_id] = h
        out = self._ok(player_id, re)
        if tick in self._desynced:
            return out
        server = self.server_digest(tick)
        values = set(reported.values())
        if len(values) > 1 or (server is not None and values != {server}):
            self._desynced.add(tick)
            self.metrics.desyncs += 1
            counters.totals["desyncs"] += 1
            logger.warning(
                "room %s: desync at tick %d: digests %s, server %s",
                self.room_id, tick, reported, server,
            )  # fmt: skip
            desync = p.Desync(
                seq=0, room=self.room_id, tick=tick, digests=dict(reported), server=server
            )
            out.append((None, desync, None))
        return out

    # -- closing ticks -------------------------------------------------------------------

    def close_until(self, due: int, now: float, deadline: Callable[[int], float]) -> list[p.Frame]:
        """Close every tick up to ``due`` (back to back when behind); the frames to send.

        ``deadline(t)`` is tick ``t``'s scheduled close time and ``now`` the actual one:
        their difference is the tick's jitter. A tick closed together with its successor
        (the room was a whole period or more behind) counts as an overrun.
        """
        tick = self.next_tick
        if tick > due:
            return []
        metrics = self.metrics
        totals = counters.totals
        frames: list[p.Frame] = []
        while tick <= due:
            frames.append(self._close(tick))
            metrics.ticks += 1
            totals["ticks"] += 1
            jitter = now - deadline(tick)
            metrics.jitter_s.append(jitter)
            counters.jitter_s.append(jitter)
            if tick < due:
                metrics.overruns += 1
                totals["overruns"] += 1
            tick += 1
        return frames

    def _close(self, tick: int) -> p.Frame:
        pending = self.pending.pop(tick, None)
        inputs: FrameInputs = tuple(sorted(pending.items())) if pending else NO_INPUTS
        sim = self.sim
        if sim is not None:
            # Computed before anything changes: a failing step leaves the room at its
            # last frame (the supervisor restarts it from there).
            state = sim.step(self.state, tick, inputs)
            self.version = self._version(tick + 1, sim, state)
            self._states.append((tick, state))
        entry = (tick, inputs)
        self.history.append(entry)
        self.log.append(entry)
        self.next_tick = tick + 1
        if self._hashes or self._digests:
            self._forget_before(tick + 1 - ROOM_HISTORY)
        return p.Frame(seq=0, room=self.room_id, tick=tick, inputs=inputs)

    def _forget_before(self, oldest: int) -> None:
        if self._hashes:
            for old in [t for t in self._hashes if t < oldest]:
                del self._hashes[old]
                self._desynced.discard(old)
        if self._digests:
            for old in [t for t in self._digests if t < oldest]:
                del self._digests[old]

    # -- replay log ----------------------------------------------------------------------

    def take_log(self) -> tuple[int, int, list[tuple[int, FrameInputs]]] | None:
        """Closed frames since the last call: ``(first_tick, last_tick, non-empty frames)``."""
        if self.next_tick <= self.log_first:
            return None
        first, last = self.log_first, self.next_tick - 1
        frames = [(tick, inputs) for tick, inputs in self.log if inputs]
        self.log = []
        self.log_first = self.next_tick
        return first, last, frames

    def stats(self) -> dict[str, Any]:
        return {
            "room": self.room_id,
            "battle": self.battle_id,
            "tick": self.next_tick,
            "members": len(self.members),
            "nodes": len(self.by_node),
            **self.config.to_json(),
            **self.metrics.snapshot(),
            # For the console's room page: who is in, and the last closed frames.
            "member_ids": [(m.player_id, m.node) for m in self.members.values()],
            "last_frames": [
                {"tick": tick, "inputs": dict(inputs)}
                for tick, inputs in list(self.history)[-STATS_LAST_FRAMES:]
            ],
        }

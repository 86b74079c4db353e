"""Deterministic simulations shared by the server and the SDKs, and the ``demo`` one.

A simulation is pure integer arithmetic (no floats, no clocks, no randomness, no dict
iteration order that could differ between languages), so every client and the server
compute the same state, and the same ``digest``, from the same frames. That is what makes
late joins (the server sends the state) and desync checks (clients send digests) exact.

It lives in the wire contract because its digests travel on the wire (``hash``,
``desync``) and every SDK must compute them identically: the JavaScript port follows the
spec in docs/ROOMS.md, checked against ``tests/fixtures/demo_replay.jsonl``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final, Protocol, TypeVar

__all__ = [
    "DEMO",
    "DIGEST_MASK",
    "FNV_OFFSET",
    "FNV_PRIME",
    "DemoSim",
    "DemoState",
    "Simulation",
    "fnv1a64",
]

FNV_OFFSET: Final = 0xCBF29CE484222325
FNV_PRIME: Final = 0x100000001B3
MASK64: Final = 2**64 - 1
# Digests are cut to 63 bits: non-negative in every language's signed 64-bit integer.
DIGEST_MASK: Final = 2**63 - 1

S = TypeVar("S")


def fnv1a64(data: bytes, h: int = FNV_OFFSET) -> int:
    """FNV-1a, 64 bits: for each byte, ``h ^= byte; h = h * prime mod 2**64``."""
    for byte in data:
        h = ((h ^ byte) * FNV_PRIME) & MASK64
    return h


class Simulation(Protocol[S]):
    """A deterministic simulation: ``step`` and ``digest`` must be pure and integer-only."""

    name: str

    def initial(self) -> S:
        """The state before tick 0."""
        ...

    def step(self, state: S, tick: int, inputs: Sequence[Sequence[Any]]) -> S:
        """The state after applying frame ``tick``: ``inputs`` is ``[[player_id, keys], ...]``
        in player-id order. Returns a new state; ``state`` is not changed."""
        ...

    def digest(self, state: S) -> int:
        """A 63-bit digest of ``state`` (what clients report in ``hash``)."""
        ...

    def to_data(self, state: S) -> dict[str, Any]:
        """The JSON object form of ``state`` (``joined.state.data``)."""
        ...

    def from_data(self, data: Mapping[str, Any]) -> S:
        """The state from its JSON object form; ValueError if malformed."""
        ...


@dataclass(frozen=True, slots=True)
class DemoState:
    """Each player a point on a ``grid`` x ``grid`` integer torus (read-only mapping)."""

    grid: int
    players: Mapping[str, tuple[int, int]]


class DemoSim:
    """``demo``: arrow/WASD bits move a player's point by one cell per tick, wrapping.

    Keys: bit value 1 up, 2 down, 4 left, 8 right (higher bits are ignored). A player not
    yet on the grid spawns at ``(h % grid, (h >> 32) % grid)``, ``h = fnv1a64(id)``, then
    moves in the same tick. Players are never removed during a battle.
    """

    name = "demo"
    GRID: Final = 64

    def initial(self) -> DemoState:
        return DemoState(self.GRID, MappingProxyType({}))

    def step(self, state: DemoState, tick: int, inputs: Sequence[Sequence[Any]]) -> DemoState:
        grid = state.grid
        players = dict(state.players)
        for player_id, keys in inputs:
            position = players.get(player_id)
            if position is None:
                h = fnv1a64(player_id.encode())
                position = (h % grid, (h >> 32) % grid)
            dx = ((keys >> 3) & 1) - ((keys >> 2) & 1)
            dy = ((keys >> 1) & 1) - (keys & 1)
            # Python's % of a positive modulus is never negative (the spec's modulo).
            players[player_id] = ((position[0] + dx) % grid, (position[1] + dy) % grid)
        return DemoState(grid, MappingProxyType(players))

    def digest(self, state: DemoState) -> int:
        h = FNV_OFFSET
        players = state.players
        # Player ids are ASCII ([A-Za-z0-9_.:-]), so code-point order is byte order.
        for player_id in sorted(players):
            x, y = players[player_id]
            h = fnv1a64(f"{player_id}:{x}:{y};".encode(), h)
        return h & DIGEST_MASK

    def to_data(self, state: DemoState) -> dict[str, Any]:
        return {
            "grid": state.grid,
            "players": {pid: [x, y] for pid, (x, y) in sorted(state.players.items())},
        }

    def from_data(self, data: Mapping[str, Any]) -> DemoState:
        grid = data.get("grid")
        players = data.get("players")
        if not isinstance(grid, int) or isinstance(grid, bool) or grid < 1:
            raise ValueError("demo state needs an int `grid` >= 1")
        if not isinstance(players, Mapping):
            raise ValueError("demo state needs a `players` object")
        parsed: dict[str, tuple[int, int]] = {}
        for player_id, position in players.items():
            if (
                not isinstance(player_id, str)
                or not isinstance(position, Sequence)
                or len(position) != 2
                or not all(_is_int(v) and 0 <= v < grid for v in position)
            ):
                raise ValueError(f"bad demo position for {player_id!r}: {position!r}")
            parsed[player_id] = (int(position[0]), int(position[1]))
        return DemoState(grid, MappingProxyType(parsed))


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


DEMO: Final = DemoSim()

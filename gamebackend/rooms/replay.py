"""A battle's replay as JSON lines, and its verification by re-running the simulation.

The JSON lines format (the console download, ``manage.py replay --jsonl`` and the test
fixture ``tests/fixtures/demo_replay.jsonl``) is one header object, then one object per
tick in order (docs/ROOMS.md):

    {"type": "battle", "battle": "...", "room": "arena", "tick_rate": 20, ...}
    {"tick": 0, "inputs": [["alice", 8], ["bob", 0]]}
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Final

from gamebackend.rooms.models import Battle
from gamebackend.rooms.selectors import battle_frames
from gamebackend.rooms.sims import get_sim

__all__ = ["VERIFY_EVERY", "Verification", "battle_header", "replay_lines", "verify_frames"]

# `replay --verify` prints the digest every this many ticks.
VERIFY_EVERY: Final = 100

FrameInputs = list[tuple[str, int]]


def battle_header(battle: Battle) -> dict[str, Any]:
    return {
        "type": "battle",
        "battle": battle.battle_id,
        "room": battle.room_id,
        "tick_rate": battle.tick_rate,
        "max_players": battle.max_players,
        "input_delay": battle.input_delay,
        "late_policy": battle.late_policy,
        "sim": battle.sim or None,
        "last_tick": battle.last_tick,
        "started_at": battle.started_at.isoformat(),
        "ended_at": battle.ended_at.isoformat() if battle.ended_at else None,
    }


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def replay_lines(battle: Battle) -> Iterator[str]:
    """The battle as JSON lines (each with its newline): header, then every persisted tick."""
    yield _dumps(battle_header(battle)) + "\n"
    for tick, inputs in battle_frames(battle=battle):
        yield _dumps({"tick": tick, "inputs": inputs}) + "\n"


@dataclass
class Verification:
    ticks: int = 0
    gaps: list[tuple[int, int]] | None = None  # missing tick ranges (first, last)
    final_tick: int = -1
    final_digest: int | None = None


def verify_frames(
    sim_name: str, frames: Iterable[tuple[int, FrameInputs]], every: int = VERIFY_EVERY
) -> Iterator[tuple[int, int] | Verification]:
    """Re-run ``frames`` through the simulation: yields ``(tick, digest)`` after every
    ``every``-th tick (ticks 99, 199, ...), then a ``Verification`` summary.

    Missing ticks (a chunk lost with a crashed node) are reported as gaps and simulated
    as frames without inputs, as the room that continued the battle did.
    """
    sim = get_sim(sim_name)
    assert sim is not None
    state = sim.initial()
    result = Verification(gaps=[])
    expected = 0
    for tick, inputs in frames:
        if tick > expected:
            assert result.gaps is not None
            result.gaps.append((expected, tick - 1))
            for missing in range(expected, tick):
                state = sim.step(state, missing, [])
        state = sim.step(state, tick, inputs)
        result.ticks += 1
        expected = tick + 1
        if (tick + 1) % every == 0:
            yield tick, sim.digest(state)
    result.final_tick = expected - 1
    result.final_digest = sim.digest(state)
    yield result

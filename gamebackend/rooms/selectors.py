from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from gamebackend.rooms.core import RoomConfig
from gamebackend.rooms.models import Battle, ReplayChunk
from gamebackend.rooms.sims import get_sim
from gameproto.rooms import ROOM_HISTORY

FrameInputs = list[tuple[str, int]]


def battle_latest(*, room_id: str) -> Battle | None:
    """The room's most recent battle."""
    return Battle.objects.filter(room_id=room_id).order_by("-started_at", "-pk").first()


def battle_get(*, battle_id: str) -> Battle | None:
    return Battle.objects.filter(battle_id=battle_id).first()


def battle_config(battle: Battle) -> RoomConfig:
    return RoomConfig(
        battle.room_id,
        tick_rate=battle.tick_rate,
        max_players=battle.max_players,
        input_delay=battle.input_delay,
        late_policy=battle.late_policy,
        sim=battle.sim or None,
    )


def battle_frames(*, battle: Battle) -> Iterator[tuple[int, FrameInputs]]:
    """Every persisted tick of the battle in order, ``(tick, [(player_id, keys), ...])``.

    Ticks of a lost chunk (a node that crashed before flushing) are missing: callers that
    need a continuous log check the tick numbers.
    """
    next_tick = 0
    chunks = ReplayChunk.objects.filter(battle=battle).order_by("first_tick")
    for chunk in chunks.iterator():
        with_inputs = {int(tick): inputs for tick, inputs in chunk.frames}
        for tick in range(max(next_tick, chunk.first_tick), chunk.last_tick + 1):
            inputs = with_inputs.get(tick)
            yield tick, [(str(pid), int(keys)) for pid, keys in inputs] if inputs else []
        next_tick = max(next_tick, chunk.last_tick + 1)


@dataclass(frozen=True)
class RestoredBattle:
    """A battle rebuilt from its replay log: it continues at ``next_tick``."""

    battle_id: str
    config: RoomConfig
    next_tick: int
    sim_state: Any
    history: list[tuple[int, FrameInputs]]


def battle_restore(*, battle_id: str) -> RestoredBattle | None:
    """Rebuild a battle (config, next tick, simulation state, recent history) from its
    persisted frames; None when nothing of it was persisted. Blocking: run in a thread."""
    battle = battle_get(battle_id=battle_id)
    if battle is None or battle.last_tick < 0:
        return None
    config = battle_config(battle)
    sim = get_sim(config.sim) if config.sim else None
    state = sim.initial() if sim is not None else None
    history: list[tuple[int, FrameInputs]] = []
    next_tick = 0
    for tick, inputs in battle_frames(battle=battle):
        if sim is not None:
            state = sim.step(state, tick, inputs)
        history.append((tick, inputs))
        if len(history) > 2 * ROOM_HISTORY:
            del history[:-ROOM_HISTORY]
        next_tick = tick + 1
    return RestoredBattle(
        battle_id=battle.battle_id,
        config=config,
        next_tick=next_tick,
        sim_state=state,
        history=history[-ROOM_HISTORY:],
    )

"""Replay logs: stored idempotently, restored for a re-created room, printed, downloaded."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management import CommandError, call_command
from django.test import Client

from gamebackend.flow.apps import STAFF_VIEWERS_GROUP
from gamebackend.rooms.models import Battle, ReplayChunk
from gamebackend.rooms.replay import Verification, verify_frames
from gamebackend.rooms.selectors import battle_frames, battle_latest, battle_restore
from gamebackend.rooms.services import replay_chunks_save
from gameproto.rooms import ROOM_HISTORY
from gameproto.sims import DEMO

pytestmark = pytest.mark.django_db
PASSWORD = "long-Enough-pass-4711"
CONFIG = {
    "room": "arena", "tick_rate": 20, "max_players": 16, "input_delay": 2,
    "late_policy": "shift", "sim": "demo",
}  # fmt: skip


def chunk(
    first: int, last: int, frames: list[Any], *, ended: bool = False, battle: str = "b1"
) -> dict[str, Any]:
    return {
        "battle": battle, "config": CONFIG, "first_tick": first, "last_tick": last,
        "frames": frames, "ended": ended,
    }  # fmt: skip


def inputs_at(tick: int) -> list[list[Any]]:
    return [["alice", tick % 16], ["bob", (tick * 7) % 16]] if tick % 3 == 0 else []


def chunks_for(first: int, last: int, size: int = 50) -> list[dict[str, Any]]:
    out = []
    for start in range(first, last + 1, size):
        end = min(last, start + size - 1)
        frames = [[t, inputs_at(t)] for t in range(start, end + 1) if inputs_at(t)]
        out.append(chunk(start, end, frames))
    return out


def test_chunks_are_stored_once_even_when_a_task_runs_twice() -> None:
    batch = chunks_for(0, 249)
    assert replay_chunks_save(chunks=batch) == 5
    assert replay_chunks_save(chunks=batch) == 0  # a redelivered task changes nothing
    battle = Battle.objects.get(battle_id="b1")
    assert (battle.room_id, battle.sim, battle.last_tick, battle.ended_at) == (
        "arena",
        "demo",
        249,
        None,
    )
    assert ReplayChunk.objects.count() == 5
    frames = list(battle_frames(battle=battle))
    assert [t for t, _ in frames] == list(range(250))
    assert frames[3] == (3, [("alice", 3), ("bob", 5)])
    assert frames[4] == (4, [])
    replay_chunks_save(chunks=[chunk(250, 260, [], ended=True)])
    battle.refresh_from_db()
    assert battle.last_tick == 260
    assert battle.ended_at is not None


def test_chunks_arriving_out_of_order_keep_the_last_tick() -> None:
    late, early = chunks_for(0, 99)
    replay_chunks_save(chunks=[early])
    replay_chunks_save(chunks=[late])
    battle = Battle.objects.get(battle_id="b1")
    assert battle.last_tick == 99
    assert [t for t, _ in battle_frames(battle=battle)] == list(range(100))


def test_a_battle_is_restored_at_its_last_persisted_tick() -> None:
    replay_chunks_save(chunks=chunks_for(0, 299))
    restored = battle_restore(battle_id="b1")
    assert restored is not None
    assert restored.next_tick == 300
    assert restored.config.sim == "demo"
    assert restored.config.room_id == "arena"
    state = DEMO.initial()
    for tick in range(300):
        state = DEMO.step(state, tick, [tuple(x) for x in inputs_at(tick)])
    assert restored.sim_state == state
    assert [t for t, _ in restored.history] == list(range(300 - ROOM_HISTORY, 300))
    assert battle_restore(battle_id="nope") is None


def test_verify_reports_digests_every_100_ticks_and_gaps() -> None:
    replay_chunks_save(chunks=chunks_for(0, 99) + chunks_for(150, 249))
    battle = Battle.objects.get(battle_id="b1")
    items = list(verify_frames("demo", battle_frames(battle=battle)))
    summary = items.pop()
    assert isinstance(summary, Verification)
    assert [item[0] for item in items if isinstance(item, tuple)] == [99, 199]
    assert summary.gaps == [(100, 149)]
    assert summary.final_tick == 249


def run_replay(*args: str) -> str:
    out = io.StringIO()
    call_command("replay", *args, stdout=out)
    return out.getvalue()


def test_replay_command_prints_frames_and_verifies() -> None:
    replay_chunks_save(chunks=chunks_for(0, 249))
    text = run_replay("arena", "--verify")
    lines = text.splitlines()
    assert lines[0].startswith("battle b1 of room arena: 20 Hz")
    assert '3 [["alice",3],["bob",5]]' in lines
    state = DEMO.initial()
    expected = []
    for tick in range(250):
        state = DEMO.step(state, tick, [tuple(x) for x in inputs_at(tick)])
        if (tick + 1) % 100 == 0:
            expected.append(f"verify: tick {tick} digest {DEMO.digest(state)}")
    assert [line for line in lines if line.startswith("verify: tick")] == expected
    assert f"tick 249 digest {DEMO.digest(state)}" in text
    assert "complete" in lines[-1]
    jsonl = [json.loads(line) for line in run_replay("arena", "--jsonl").splitlines()]
    assert jsonl[0]["type"] == "battle"
    assert jsonl[0]["sim"] == "demo"
    assert jsonl[4] == {"tick": 3, "inputs": [["alice", 3], ["bob", 5]]}
    assert len(jsonl) == 251


def test_replay_command_errors_clearly() -> None:
    with pytest.raises(CommandError, match="no battle of room 'ghost'"):
        run_replay("ghost")
    replay_chunks_save(chunks=chunks_for(0, 49) + chunks_for(100, 149))
    with pytest.raises(CommandError, match=r"gaps \(ticks 50\.\.99\)"):
        run_replay("arena", "--verify", "--quiet")
    other = {**CONFIG, "room": "plain", "sim": None}
    replay_chunks_save(chunks=[{**chunk(0, 9, []), "battle": "b2", "config": other}])
    with pytest.raises(CommandError, match="no simulation"):
        run_replay("plain", "--verify")


def staff(username: str, *, group: str | None, is_staff: bool = True) -> Client:
    user = get_user_model().objects.create_user(username, password=PASSWORD, is_staff=is_staff)
    if group:
        user.groups.add(Group.objects.get(name=group))
    client = Client()
    client.force_login(user)
    return client


def test_staff_download_a_replay_as_json_lines_and_nobody_else() -> None:
    replay_chunks_save(chunks=chunks_for(0, 99))
    battle = battle_latest(room_id="arena")
    assert battle is not None
    url = f"/console/rooms/battle/{battle.pk}/replay.jsonl"
    viewer = staff("viewer", group=STAFF_VIEWERS_GROUP)
    listing = viewer.get("/console/rooms/battle/")
    assert listing.status_code == 200
    assert url in listing.content.decode()
    response = viewer.get(url)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/jsonl"
    lines = [json.loads(line) for line in b"".join(response.streaming_content).splitlines()]  # type: ignore[attr-defined]
    assert lines[0]["battle"] == "b1"
    assert [line["tick"] for line in lines[1:]] == list(range(100))
    # Staff without the view permission, a logged-in non-staff user, and nobody at all.
    assert staff("nobody", group=None).get(url).status_code == 403
    player = staff("player", group=None, is_staff=False).get(url)
    assert player.status_code == 302
    assert "/console/login/" in player["Location"]
    anonymous = Client().get(url)
    assert anonymous.status_code == 302
    assert "/console/login/" in anonymous["Location"]

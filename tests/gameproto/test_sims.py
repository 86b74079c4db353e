"""The `demo` simulation follows its spec (docs/ROOMS.md) exactly: the JS port relies on it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gameproto.sims import DEMO, DIGEST_MASK, DemoState, fnv1a64

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "demo_replay.jsonl"


@pytest.mark.parametrize(
    ("data", "expected"),
    # Published FNV-1a 64 test vectors (Fowler/Noll/Vo reference implementation).
    [(b"", 0xCBF29CE484222325), (b"a", 0xAF63DC4C8601EC8C), (b"foobar", 0x85944171F73967E8)],
)
def test_fnv1a64_matches_the_reference_vectors(data: bytes, expected: int) -> None:
    assert fnv1a64(data) == expected


def spawn(player: str) -> tuple[int, int]:
    h = fnv1a64(player.encode())
    return h % 64, (h >> 32) % 64


# Expected movement per key combination, written out from the bit assignments
# (1 up, 2 down, 4 left, 8 right; y grows downwards).
MOVES = {
    0: (0, 0), 1: (0, -1), 2: (0, 1), 3: (0, 0), 4: (-1, 0), 8: (1, 0), 12: (0, 0),
    5: (-1, -1), 6: (-1, 1), 9: (1, -1), 10: (1, 1), 15: (0, 0),
}  # fmt: skip


@pytest.mark.parametrize(("keys", "move"), sorted(MOVES.items()))
def test_a_new_player_spawns_then_moves_in_the_same_tick(keys: int, move: tuple[int, int]) -> None:
    x, y = spawn("p1")
    state = DEMO.step(DEMO.initial(), 0, [["p1", keys]])
    assert state.players["p1"] == ((x + move[0]) % 64, (y + move[1]) % 64)
    # Bits above the four arrows change nothing.
    assert DEMO.step(DEMO.initial(), 0, [["p1", keys | 0xFFF0]]) == state


def test_moves_wrap_at_every_edge() -> None:
    corner = DemoState(64, {"p": (0, 0)})
    assert DEMO.step(corner, 0, [["p", 4 | 1]]).players["p"] == (63, 63)
    far = DemoState(64, {"p": (63, 63)})
    assert DEMO.step(far, 0, [["p", 8 | 2]]).players["p"] == (0, 0)


def test_step_returns_a_new_state_and_keeps_absent_players() -> None:
    before = DemoState(64, {"a": (1, 1), "b": (5, 5)})
    after = DEMO.step(before, 3, [["a", 8]])
    assert before.players == {"a": (1, 1), "b": (5, 5)}
    assert after.players == {"a": (2, 1), "b": (5, 5)}
    with pytest.raises(TypeError):
        after.players["a"] = (0, 0)  # type: ignore[index]


def test_digest_is_fnv_over_sorted_players_cut_to_63_bits() -> None:
    state = DemoState(64, {"zed": (3, 60), "amy": (0, 7)})
    expected = fnv1a64(b"amy:0:7;zed:3:60;") & (2**63 - 1)
    assert DEMO.digest(state) == expected
    assert DEMO.digest(DEMO.initial()) == 0xCBF29CE484222325 & DIGEST_MASK


@given(
    st.lists(
        st.lists(
            st.tuples(st.sampled_from(["a", "b", "c.d", "e-1"]), st.integers(0, 0xFFFF)),
            max_size=4,
            unique_by=lambda pair: pair[0],
        ),
        max_size=30,
    )
)
def test_data_round_trip_and_digest_range(frames: list[list[tuple[str, int]]]) -> None:
    state = DEMO.initial()
    for tick, inputs in enumerate(frames):
        state = DEMO.step(state, tick, sorted(inputs))
    again = DEMO.from_data(json.loads(json.dumps(DEMO.to_data(state))))
    assert again == state
    assert 0 <= DEMO.digest(state) <= 2**63 - 1
    for x, y in state.players.values():
        assert 0 <= x < 64
        assert 0 <= y < 64


@pytest.mark.parametrize(
    "data",
    [{}, {"grid": 0, "players": {}}, {"grid": True, "players": {}}, {"grid": 64},
     {"grid": 64, "players": {"a": [64, 0]}}, {"grid": 64, "players": {"a": [1]}},
     {"grid": 64, "players": {"a": [1.5, 2]}}],
)  # fmt: skip
def test_from_data_refuses_malformed_states(data: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="demo"):
        DEMO.from_data(data)


def test_the_recorded_demo_battle_replays_to_its_digests_at_every_tick() -> None:
    # The cross-language fixture (recorded by tests/fixtures/record_demo_replay.py from a
    # real node's replay log): every SDK must reach these digests from these frames.
    header, *frames = (json.loads(line) for line in FIXTURE.read_text().splitlines())
    assert (header["type"], header["sim"]) == ("battle", "demo")
    assert [f["tick"] for f in frames] == list(range(header["last_tick"] + 1))
    assert len(frames) >= 300
    players = {pid for f in frames for pid, _ in f["inputs"]}
    assert len(players) >= 4
    assert {keys & 0xF for f in frames for _, keys in f["inputs"]} == set(range(16))
    assert any(keys > 0xF for f in frames for _, keys in f["inputs"])
    state = DEMO.initial()
    wrapped = False
    for frame in frames:
        before = state
        state = DEMO.step(state, frame["tick"], frame["inputs"])
        assert DEMO.digest(state) == frame["digest"], frame["tick"]
        for pid, (x, y) in state.players.items():
            old = before.players.get(pid)
            wrapped |= old is not None and (abs(x - old[0]) > 1 or abs(y - old[1]) > 1)
    assert wrapped  # somebody crossed a grid edge

"""The SDK's lockstep helpers as pure logic: interpolation, the input buffer, prediction."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gameclient import InputBuffer, Lockstep, interpolate, lerp_angle, lerp_wrapped
from gameproto.sims import DEMO, DemoState

RATE = 20
PERIOD = 1 / RATE


@pytest.mark.parametrize(
    ("alpha", "expected"), [(-1.0, 10.0), (0.0, 10.0), (0.25, 12.5), (1.0, 20.0), (7.0, 20.0)]
)
def test_interpolate_clamps_alpha(alpha: float, expected: float) -> None:
    assert interpolate(10.0, 20.0, alpha) == expected


def test_interpolate_points_and_nan() -> None:
    assert interpolate((0, 10), (10, 20), 0.5) == (5.0, 15.0)
    assert interpolate([0, 0], [4, 8], 2.0) == [4.0, 8.0]
    assert interpolate(1.0, 3.0, math.nan) == 1.0
    with pytest.raises(ValueError, match="same length"):
        interpolate((0, 1), (0, 1, 2), 0.5)


def test_lerp_angle_takes_the_shorter_arc() -> None:
    assert lerp_angle(350, 10, 0.5) == pytest.approx(0.0)
    assert lerp_angle(350, 10, 0.25) == pytest.approx(355.0)
    assert lerp_angle(10, 350, 0.25) == pytest.approx(5.0)
    assert lerp_angle(0, 90, 0.5) == pytest.approx(45.0)
    assert lerp_angle(0, 270, 0.5) == pytest.approx(315.0)  # -90 is shorter than +270
    assert lerp_angle(350, 10, 3.0) == pytest.approx(10.0)  # clamped


@given(
    st.floats(0, 360, exclude_max=True),
    st.floats(0, 360, exclude_max=True),
    st.floats(0, 1),
)
def test_lerp_angle_never_travels_more_than_half_a_turn(a: float, b: float, alpha: float) -> None:
    result = lerp_angle(a, b, alpha)
    assert 0 <= result < 360
    travelled = min((result - a) % 360, (a - result) % 360)
    assert travelled <= 180 * alpha + 1e-6


def test_lerp_wrapped_on_a_grid_edge() -> None:
    assert lerp_wrapped(63, 0, 0.5, 64) == pytest.approx(63.5)
    assert lerp_wrapped(0, 63, 0.5, 64) == pytest.approx(63.5)


def test_input_buffer_keeps_128_ticks() -> None:
    buffer = InputBuffer()
    for tick in range(300):
        buffer.put(tick, tick % 16)
    assert buffer.get(299) == 299 % 16
    assert buffer.get(300 - 128) == (300 - 128) % 16
    assert buffer.get(300 - 129) is None  # overwritten by tick 299's slot
    assert buffer.get(400) is None
    assert buffer.latest_at_or_before(350) == 299 % 16
    sparse = InputBuffer()
    sparse.put(10, 5)
    assert sparse.latest_at_or_before(20) == 5
    assert sparse.latest_at_or_before(9) is None


def lockstep(now: float = 0.0) -> Lockstep[DemoState]:
    return Lockstep(DEMO, player_id="me", tick_rate=RATE, tick=0, state=DEMO.initial(), now=now)


def test_in_time_frames_are_shown_confirmed_and_interpolated() -> None:
    ls = lockstep()
    ls.confirm(0, [["me", 8]], now=PERIOD)
    ls.confirm(1, [["me", 8]], now=2 * PERIOD)
    view = ls.view(2 * PERIOD + PERIOD / 2)
    assert view.mode == "interpolate"
    after_0 = DEMO.step(DEMO.initial(), 0, [("me", 8)])
    assert view.before == after_0
    assert view.after == DEMO.step(after_0, 1, [("me", 8)]) == ls.state
    assert view.alpha == pytest.approx(0.5)
    assert ls.rollbacks == 0


def test_late_frames_switch_to_prediction_and_a_wrong_guess_rolls_back() -> None:
    ls = lockstep()
    ls.confirm(0, [["me", 8], ["other", 2]], now=PERIOD)
    # We keep sending "right"; the server's frames stop arriving for 200 ms (> 120 ms).
    for tick in range(1, 8):
        ls.on_input(tick, 8)
    now = PERIOD + 0.2
    view = ls.view(now)
    assert view.mode == "predict"
    assert view.lag_s > 0.12
    local = math.floor(ls.local_tick(now))
    expected = ls.state
    for tick in range(1, local + 1):
        expected = DEMO.step(expected, tick, [("me", 8), ("other", 2)])
    assert view.after == expected  # us moving right, the other player still moving down
    # The confirmed frame 1 says the other player stopped: roll back and re-simulate.
    ls.confirm(1, [["me", 8]], now=now)
    assert (ls.mispredictions, ls.rollbacks) == (1, 1)
    later = ls.view(now)
    redone = ls.state
    for tick in range(2, math.floor(ls.local_tick(now)) + 1):
        redone = DEMO.step(redone, tick, [("me", 8)])
    assert later.after == redone


def test_a_correct_prediction_is_kept_without_a_rollback() -> None:
    ls = lockstep()
    ls.confirm(0, [["me", 4]], now=PERIOD)
    for tick in range(1, 10):
        ls.on_input(tick, 4)
    now = PERIOD + 0.3
    assert ls.view(now).mode == "predict"
    guessed = ls.predicted(9)
    for tick in range(1, 10):
        ls.confirm(tick, [["me", 4]], now=now)
    assert (ls.rollbacks, ls.mispredictions) == (0, 0)
    assert ls.state == guessed


def test_frames_must_come_in_order() -> None:
    ls = lockstep()
    with pytest.raises(ValueError, match="expected frame 0"):
        ls.confirm(3, [], now=0.1)


def test_inputs_aim_at_the_next_tick_plus_the_delay() -> None:
    ls = lockstep()
    ls.confirm(0, [], now=PERIOD)
    assert ls.input_tick(PERIOD, 2) == 3
    assert ls.input_tick(PERIOD * 5 + 0.001, 2) >= 7

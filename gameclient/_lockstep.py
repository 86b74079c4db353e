"""Client-side lockstep: the input buffer, prediction with rollback, interpolation helpers.

Pure logic (no I/O, clock passed in), so it is tested on its own; `Room` wires it to a
`GameClient`. The policy follows the design (docs/ROOMS.md, "Client: prediction"):

* The server's frames are the truth. The client applies each confirmed frame to its
  *confirmed* state, in tick order.
* While confirmed frames arrive in time (the newest is at most ``rollback_after_s``,
  120 ms, behind the local tick clock) the client shows confirmed states only, and
  interpolates between the last two: it waits rather than guesses.
* When they fall further behind, the client predicts: it runs the simulation ahead of the
  confirmed state up to the local tick with its own buffered inputs and everybody else's
  last known keys. When a confirmed frame differs from what was predicted for its tick,
  the prediction is rolled back to that tick and re-simulated up to now.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final, Generic, Literal, TypeVar

from gameproto.sims import Simulation

__all__ = [
    "INPUT_BUFFER_SIZE",
    "ROLLBACK_AFTER_S",
    "InputBuffer",
    "Lockstep",
    "View",
    "interpolate",
    "lerp_angle",
    "lerp_wrapped",
]

# The design's inputBuffer[128]: the client keeps its inputs this many ticks back.
INPUT_BUFFER_SIZE: Final = 128
# Confirmed frames later than this behind the local tick clock switch to prediction.
ROLLBACK_AFTER_S: Final = 0.120

S = TypeVar("S")
FrameInputs = list[tuple[str, int]]


def _clamp01(alpha: float) -> float:
    if not alpha > 0.0:  # also NaN
        return 0.0
    return 1.0 if alpha > 1.0 else alpha


def interpolate(a: Any, b: Any, alpha: float) -> Any:
    """``a + (b - a) * alpha`` with ``alpha`` clamped to [0, 1]; numbers, or sequences of
    numbers element by element (a tuple for a tuple, a list otherwise)."""
    alpha = _clamp01(alpha)
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a + (b - a) * alpha
    if len(a) != len(b):
        raise ValueError("interpolate needs two values of the same length")
    values = [x + (y - x) * alpha for x, y in zip(a, b, strict=True)]
    return tuple(values) if isinstance(a, tuple) else values


def lerp_wrapped(a: float, b: float, alpha: float, period: float) -> float:
    """Interpolate on a circle of circumference ``period`` along the shorter arc; the result
    is in ``[0, period)``. (A point that wraps from 63 to 0 on a 64-cell grid moves one
    cell, not 63.)"""
    alpha = _clamp01(alpha)
    delta = (b - a) % period
    if delta > period / 2:
        delta -= period
    result = (a + delta * alpha) % period
    # A tiny negative step wraps to just below `period`, which a float may round up to it.
    return 0.0 if result >= period else result


def lerp_angle(a: float, b: float, alpha: float) -> float:
    """Angles in degrees, along the shorter arc: 350 -> 10 at 0.5 gives 0, not 180."""
    return lerp_wrapped(a, b, alpha, 360.0)


class InputBuffer:
    """The player's own inputs of the last ``size`` ticks, by tick (a ring buffer)."""

    __slots__ = ("_keys", "_newest", "_ticks", "size")

    def __init__(self, size: int = INPUT_BUFFER_SIZE) -> None:
        if size < 1:
            raise ValueError("size must be >= 1")
        self.size = size
        self._ticks: list[int] = [-1] * size
        self._keys: list[int] = [0] * size
        self._newest = -1

    def put(self, tick: int, keys: int) -> None:
        slot = tick % self.size
        self._ticks[slot] = tick
        self._keys[slot] = keys
        self._newest = max(self._newest, tick)

    def get(self, tick: int) -> int | None:
        """The keys sent for ``tick``, or None (never sent, or older than ``size`` ticks)."""
        if tick < 0 or tick <= self._newest - self.size:
            return None
        slot = tick % self.size
        return self._keys[slot] if self._ticks[slot] == tick else None

    def latest_at_or_before(self, tick: int) -> int | None:
        """The keys in effect at ``tick``: the newest input sent for ``tick`` or earlier."""
        for t in range(tick, max(-1, tick - self.size), -1):
            keys = self.get(t)
            if keys is not None:
                return keys
        return None

    @property
    def newest(self) -> int:
        return self._newest


@dataclass(frozen=True)
class View(Generic[S]):
    """What to draw now: ``interpolate(before, after, alpha)`` per entity."""

    mode: Literal["interpolate", "predict"]
    tick: float  # the (fractional) tick shown
    before: S
    after: S
    alpha: float
    lag_s: float  # how far the newest confirmed frame is behind the local tick clock


class Lockstep(Generic[S]):
    """Confirmed and predicted simulation states of one room for one player."""

    def __init__(
        self,
        sim: Simulation[S],
        *,
        player_id: str,
        tick_rate: int,
        tick: int,
        state: S,
        now: float,
        rollback_after_s: float = ROLLBACK_AFTER_S,
        buffer: InputBuffer | None = None,
    ) -> None:
        self.sim = sim
        self.player_id = player_id
        self.rate = tick_rate
        self.rollback_after_s = rollback_after_s
        self.inputs = buffer or InputBuffer()
        # Confirmed: ``state`` is the state after closing ``next_tick - 1``.
        self.next_tick = tick
        self.state = state
        self.previous = state
        self.last_inputs: FrameInputs = []
        self.last_arrival = now
        # Clock: the earliest any frame has arrived relative to its tick (best case).
        self._offset = now - (tick - 1) / tick_rate
        # Predicted states after ticks next_tick, next_tick + 1, ... with their inputs.
        self._predicted: list[tuple[FrameInputs, S]] = []
        self.rollbacks = 0
        self.mispredictions = 0
        self.frames = 0

    # -- the clock -----------------------------------------------------------------------

    def local_tick(self, now: float) -> float:
        """The (fractional) tick the server has closed by ``now`` at best-case latency."""
        return (now - self._offset) * self.rate

    def lag_s(self, now: float) -> float:
        """How far the newest confirmed frame is behind the local tick clock, in seconds."""
        return max(0.0, (self.local_tick(now) - (self.next_tick - 1)) / self.rate)

    def input_tick(self, now: float, input_delay: int) -> int:
        """The tick an input sent now should aim at: the next tick plus the input delay."""
        return max(self.next_tick, math.floor(self.local_tick(now)) + 1) + input_delay

    # -- confirmed frames ----------------------------------------------------------------

    def confirm(self, tick: int, inputs: Sequence[Sequence[Any]], now: float) -> None:
        """Apply the server's frame ``tick`` (frames must come in order, without gaps)."""
        if tick != self.next_tick:
            raise ValueError(f"expected frame {self.next_tick}, got {tick}")
        frame: FrameInputs = [(str(pid), int(keys)) for pid, keys in inputs]
        self._offset = min(self._offset, now - tick / self.rate)
        predicted = self._predicted
        if predicted:
            guessed, guessed_state = predicted[0]
            if guessed == frame:
                # The prediction held: its state is the confirmed one, keep the rest.
                predicted.pop(0)
                self._advance(tick, frame, guessed_state, now)
                return
            # Misprediction: roll back to this tick; the rest is re-simulated on demand.
            self.mispredictions += 1
            self.rollbacks += 1
            predicted.clear()
        self._advance(tick, frame, self.sim.step(self.state, tick, frame), now)

    def _advance(self, tick: int, frame: FrameInputs, state: S, now: float) -> None:
        self.previous = self.state
        self.state = state
        self.last_inputs = frame
        self.next_tick = tick + 1
        self.last_arrival = now
        self.frames += 1

    # -- prediction ----------------------------------------------------------------------

    def _guess(self, tick: int) -> FrameInputs:
        """Predicted inputs of ``tick``: everybody's last confirmed keys, ours as buffered."""
        mine = self.inputs.latest_at_or_before(tick)
        guess = [(pid, keys) for pid, keys in self.last_inputs if pid != self.player_id]
        if mine is not None:
            guess.append((self.player_id, mine))
            guess.sort()
        return guess

    def predicted(self, upto: int) -> S:
        """The predicted state after tick ``upto`` (the confirmed one if it is older)."""
        if upto < self.next_tick:
            return self.state if upto == self.next_tick - 1 else self.previous
        predicted = self._predicted
        state = predicted[-1][1] if predicted else self.state
        tick = self.next_tick + len(predicted)
        while tick <= upto:
            guess = self._guess(tick)
            state = self.sim.step(state, tick, guess)
            predicted.append((guess, state))
            tick += 1
        return predicted[upto - self.next_tick][1]

    def on_input(self, tick: int, keys: int) -> None:
        """Our own input for ``tick``: remember it; predictions from that tick are redone."""
        self.inputs.put(tick, keys)
        keep = tick - self.next_tick
        if 0 <= keep < len(self._predicted):
            del self._predicted[keep:]

    # -- what to show ---------------------------------------------------------------------

    def view(self, now: float) -> View[S]:
        lag = self.lag_s(now)
        if lag <= self.rollback_after_s:
            # Frames are in time: show confirmed states only, between the last two.
            alpha = _clamp01((now - self.last_arrival) * self.rate)
            shown = self.next_tick - 2 + alpha
            return View("interpolate", shown, self.previous, self.state, alpha, lag)
        # Frames are late: predict up to the local tick.
        local = self.local_tick(now)
        upto = math.floor(local)
        before = self.predicted(upto - 1)
        after = self.predicted(upto)
        alpha = _clamp01(local - upto)
        return View("predict", upto - 1 + alpha, before, after, alpha, lag)

// Client-side lockstep: the input buffer, prediction with rollback, interpolation helpers.
// A port of the Python SDK's `gameclient/_lockstep.py` (same rules, same numbers); pure
// logic with the clock passed in (seconds), so it is tested on its own. The policy
// (docs/ROOMS.md, "The client"):
//
// * The server's frames are the truth: each confirmed frame is applied, in tick order, to
//   the confirmed state.
// * While confirmed frames arrive in time (the newest at most `rollbackAfterS`, 120 ms,
//   behind the local tick clock) the client shows confirmed states only and interpolates
//   between the last two: it waits rather than guesses.
// * Beyond that it predicts: it runs the simulation ahead of the confirmed state up to the
//   local tick with its own buffered inputs and everybody else's last known keys. When a
//   confirmed frame differs from what was predicted for its tick, the prediction is rolled
//   back to that tick and re-simulated up to now.

import { compareCodePoints } from "./sims.js";

/** The design's inputBuffer[128]: the client keeps its inputs this many ticks back. */
export const INPUT_BUFFER_SIZE = 128;
/** Confirmed frames later than this (seconds) behind the local tick clock switch to prediction. */
export const ROLLBACK_AFTER_S = 0.12;

function clamp01(alpha) {
  if (!(alpha > 0)) return 0; // also NaN
  return alpha > 1 ? 1 : alpha;
}

/** a + (b - a) * alpha with alpha clamped to [0, 1]; numbers, or arrays element by element. */
export function interpolate(a, b, alpha) {
  const t = clamp01(alpha);
  if (typeof a === "number" && typeof b === "number") return a + (b - a) * t;
  if (a.length !== b.length) throw new RangeError("interpolate needs two values of the same length");
  return Array.from(a, (x, i) => x + (b[i] - x) * t);
}

/**
 * Interpolate on a circle of circumference `period` along the shorter arc; the result is in
 * [0, period). (A point that wraps from 63 to 0 on a 64-cell grid moves one cell, not 63.)
 */
export function lerpWrapped(a, b, alpha, period) {
  const t = clamp01(alpha);
  let delta = (((b - a) % period) + period) % period;
  if (delta > period / 2) delta -= period;
  const result = (((a + delta * t) % period) + period) % period;
  // A tiny negative step wraps to just below `period`, which a float may round up to it.
  return result >= period ? 0 : result;
}

/** Angles in degrees along the shorter arc: 350 -> 10 at 0.5 gives 0, not 180. */
export function lerpAngle(a, b, alpha) {
  return lerpWrapped(a, b, alpha, 360);
}

/** The player's own inputs of the last `size` ticks, by tick (a ring buffer). */
export class InputBuffer {
  constructor(size = INPUT_BUFFER_SIZE) {
    if (!(size >= 1)) throw new RangeError("size must be >= 1");
    this.size = size;
    this._ticks = new Array(size).fill(-1);
    this._keys = new Array(size).fill(0);
    this.newest = -1;
  }

  put(tick, keys) {
    const slot = tick % this.size;
    this._ticks[slot] = tick;
    this._keys[slot] = keys;
    this.newest = Math.max(this.newest, tick);
  }

  /** The keys sent for `tick`, or null (never sent, or older than `size` ticks). */
  get(tick) {
    if (tick < 0 || tick <= this.newest - this.size) return null;
    const slot = tick % this.size;
    return this._ticks[slot] === tick ? this._keys[slot] : null;
  }

  /** The keys in effect at `tick`: the newest input sent for `tick` or earlier. */
  latestAtOrBefore(tick) {
    for (let t = tick; t > Math.max(-1, tick - this.size); t -= 1) {
      const keys = this.get(t);
      if (keys !== null) return keys;
    }
    return null;
  }
}

function sameInputs(a, b) {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i += 1) {
    if (a[i][0] !== b[i][0] || a[i][1] !== b[i][1]) return false;
  }
  return true;
}

const byPlayer = (x, y) => compareCodePoints(x[0], y[0]) || x[1] - y[1];

/**
 * What to draw now: `interpolate(before, after, alpha)` per entity. `mode` is
 * "interpolate" or "predict"; `tick` the (fractional) tick shown; `lagS` how far the newest
 * confirmed frame is behind the local tick clock.
 */
export class View {
  constructor(mode, tick, before, after, alpha, lagS) {
    Object.assign(this, { mode, tick, before, after, alpha, lagS });
    Object.freeze(this);
  }
}

/** Confirmed and predicted simulation states of one room for one player. */
export class Lockstep {
  constructor(sim, { playerId, tickRate, tick, state, now, rollbackAfterS = ROLLBACK_AFTER_S, buffer }) {
    this.sim = sim;
    this.playerId = playerId;
    this.rate = tickRate;
    this.rollbackAfterS = rollbackAfterS;
    this.inputs = buffer ?? new InputBuffer();
    // Confirmed: `state` is the state after closing `nextTick - 1`.
    this.nextTick = tick;
    this.state = state;
    this.previous = state;
    this.lastInputs = [];
    this.lastArrival = now;
    // Clock: the earliest any frame has arrived relative to its tick (best case).
    this._offset = now - (tick - 1) / tickRate;
    // Predicted states after ticks nextTick, nextTick + 1, ... with their inputs.
    this._predicted = [];
    this.rollbacks = 0;
    this.mispredictions = 0;
    this.frames = 0;
  }

  // -- the clock ------------------------------------------------------------------------

  /** The (fractional) tick the server has closed by `now` at best-case latency. */
  localTick(now) {
    return (now - this._offset) * this.rate;
  }

  /** How far the newest confirmed frame is behind the local tick clock, in seconds. */
  lagS(now) {
    return Math.max(0, (this.localTick(now) - (this.nextTick - 1)) / this.rate);
  }

  /** The tick an input sent now should aim at: the next tick plus the input delay. */
  inputTick(now, inputDelay) {
    return Math.max(this.nextTick, Math.floor(this.localTick(now)) + 1) + inputDelay;
  }

  // -- confirmed frames -------------------------------------------------------------------

  /** Apply the server's frame `tick` (frames must come in order, without gaps). */
  confirm(tick, inputs, now) {
    if (tick !== this.nextTick) throw new RangeError(`expected frame ${this.nextTick}, got ${tick}`);
    const frame = inputs.map(([playerId, keys]) => [String(playerId), Number(keys)]);
    this._offset = Math.min(this._offset, now - tick / this.rate);
    const predicted = this._predicted;
    if (predicted.length > 0) {
      const [guessed, guessedState] = predicted[0];
      if (sameInputs(guessed, frame)) {
        // The prediction held: its state is the confirmed one, keep the rest.
        predicted.shift();
        this._advance(tick, frame, guessedState, now);
        return;
      }
      // Misprediction: roll back to this tick; the rest is re-simulated on demand.
      this.mispredictions += 1;
      this.rollbacks += 1;
      predicted.length = 0;
    }
    this._advance(tick, frame, this.sim.step(this.state, tick, frame), now);
  }

  _advance(tick, frame, state, now) {
    this.previous = this.state;
    this.state = state;
    this.lastInputs = frame;
    this.nextTick = tick + 1;
    this.lastArrival = now;
    this.frames += 1;
  }

  // -- prediction ---------------------------------------------------------------------------

  /** Predicted inputs of `tick`: everybody's last confirmed keys, ours as buffered. */
  _guess(tick) {
    const mine = this.inputs.latestAtOrBefore(tick);
    const guess = this.lastInputs.filter(([playerId]) => playerId !== this.playerId);
    if (mine !== null) {
      guess.push([this.playerId, mine]);
      guess.sort(byPlayer);
    }
    return guess;
  }

  /** The predicted state after tick `upto` (the confirmed one if it is older). */
  predicted(upto) {
    if (upto < this.nextTick) return upto === this.nextTick - 1 ? this.state : this.previous;
    const predicted = this._predicted;
    let state = predicted.length > 0 ? predicted[predicted.length - 1][1] : this.state;
    for (let tick = this.nextTick + predicted.length; tick <= upto; tick += 1) {
      const guess = this._guess(tick);
      state = this.sim.step(state, tick, guess);
      predicted.push([guess, state]);
    }
    return predicted[upto - this.nextTick][1];
  }

  /** Our own input for `tick`: remember it; predictions from that tick on are redone. */
  onInput(tick, keys) {
    this.inputs.put(tick, keys);
    const keep = tick - this.nextTick;
    if (keep >= 0 && keep < this._predicted.length) this._predicted.length = keep;
  }

  // -- what to show -------------------------------------------------------------------------

  view(now) {
    const lag = this.lagS(now);
    if (lag <= this.rollbackAfterS) {
      // Frames are in time: show confirmed states only, between the last two.
      const alpha = clamp01((now - this.lastArrival) * this.rate);
      return new View("interpolate", this.nextTick - 2 + alpha, this.previous, this.state, alpha, lag);
    }
    // Frames are late: predict up to the local tick.
    const local = this.localTick(now);
    const upto = Math.floor(local);
    const before = this.predicted(upto - 1);
    const after = this.predicted(upto);
    const alpha = clamp01(local - upto);
    return new View("predict", upto - 1 + alpha, before, after, alpha, lag);
  }
}

// The lockstep helpers as pure logic, the same cases as the Python SDK's
// tests/gameclient/test_lockstep.py: interpolation, the input buffer, prediction.
import assert from "node:assert/strict";
import test from "node:test";

import { DEMO, InputBuffer, Lockstep, interpolate, lerpAngle, lerpWrapped } from "./sdk.mjs";

const RATE = 20;
const PERIOD = 1 / RATE;
const near = (actual, expected) => assert.ok(Math.abs(actual - expected) < 1e-9, `${actual} != ${expected}`);

test("interpolate clamps alpha to [0, 1], element by element for points", () => {
  for (const [alpha, expected] of [[-1, 10], [0, 10], [0.25, 12.5], [1, 20], [7, 20]]) {
    assert.equal(interpolate(10, 20, alpha), expected);
  }
  assert.deepEqual(interpolate([0, 10], [10, 20], 0.5), [5, 15]);
  assert.deepEqual(interpolate([0, 0], [4, 8], 2), [4, 8]);
  assert.equal(interpolate(1, 3, Number.NaN), 1);
  assert.throws(() => interpolate([0, 1], [0, 1, 2], 0.5), /same length/);
});

test("lerpAngle takes the shorter arc", () => {
  near(lerpAngle(350, 10, 0.5), 0);
  near(lerpAngle(350, 10, 0.25), 355);
  near(lerpAngle(10, 350, 0.25), 5);
  near(lerpAngle(0, 90, 0.5), 45);
  near(lerpAngle(0, 270, 0.5), 315); // -90 is shorter than +270
  near(lerpAngle(350, 10, 3), 10); // clamped
  for (let i = 0; i < 500; i += 1) {
    const [a, b, alpha] = [((i * 37) % 3600) / 10, ((i * 91) % 3600) / 10, (i % 11) / 10];
    const result = lerpAngle(a, b, alpha);
    assert.ok(result >= 0 && result < 360);
    const travelled = Math.min((((result - a) % 360) + 360) % 360, (((a - result) % 360) + 360) % 360);
    assert.ok(travelled <= 180 * alpha + 1e-6);
  }
});

test("lerpWrapped crosses a grid edge by one cell", () => {
  near(lerpWrapped(63, 0, 0.5, 64), 63.5);
  near(lerpWrapped(0, 63, 0.5, 64), 63.5);
});

test("the input buffer keeps 128 ticks", () => {
  const buffer = new InputBuffer();
  for (let tick = 0; tick < 300; tick += 1) buffer.put(tick, tick % 16);
  assert.equal(buffer.get(299), 299 % 16);
  assert.equal(buffer.get(300 - 128), (300 - 128) % 16);
  assert.equal(buffer.get(300 - 129), null);
  assert.equal(buffer.get(400), null);
  assert.equal(buffer.latestAtOrBefore(350), 299 % 16);
  const sparse = new InputBuffer();
  sparse.put(10, 5);
  assert.equal(sparse.latestAtOrBefore(20), 5);
  assert.equal(sparse.latestAtOrBefore(9), null);
});

const lockstep = (now = 0) =>
  new Lockstep(DEMO, { playerId: "me", tickRate: RATE, tick: 0, state: DEMO.initial(), now });
const same = (a, b) => assert.deepEqual(DEMO.toData(a), DEMO.toData(b));

test("frames in time are shown confirmed and interpolated", () => {
  const ls = lockstep();
  ls.confirm(0, [["me", 8]], PERIOD);
  ls.confirm(1, [["me", 8]], 2 * PERIOD);
  const view = ls.view(2 * PERIOD + PERIOD / 2);
  assert.equal(view.mode, "interpolate");
  const after0 = DEMO.step(DEMO.initial(), 0, [["me", 8]]);
  same(view.before, after0);
  same(view.after, DEMO.step(after0, 1, [["me", 8]]));
  assert.equal(view.after, ls.state);
  near(view.alpha, 0.5);
  assert.equal(ls.rollbacks, 0);
});

test("late frames switch to prediction, and a wrong guess rolls back", () => {
  const ls = lockstep();
  ls.confirm(0, [["me", 8], ["other", 2]], PERIOD);
  for (let tick = 1; tick < 8; tick += 1) ls.onInput(tick, 8);
  const now = PERIOD + 0.2; // no frame for 200 ms (> 120 ms)
  const view = ls.view(now);
  assert.equal(view.mode, "predict");
  assert.ok(view.lagS > 0.12);
  const local = Math.floor(ls.localTick(now));
  let expected = ls.state;
  for (let tick = 1; tick <= local; tick += 1) expected = DEMO.step(expected, tick, [["me", 8], ["other", 2]]);
  same(view.after, expected); // us moving right, the other still moving down
  // The confirmed frame 1 says the other player stopped: roll back and re-simulate.
  ls.confirm(1, [["me", 8]], now);
  assert.deepEqual([ls.mispredictions, ls.rollbacks], [1, 1]);
  const later = ls.view(now);
  let redone = ls.state;
  for (let tick = 2; tick <= Math.floor(ls.localTick(now)); tick += 1) redone = DEMO.step(redone, tick, [["me", 8]]);
  same(later.after, redone);
});

test("a correct prediction is kept without a rollback", () => {
  const ls = lockstep();
  ls.confirm(0, [["me", 4]], PERIOD);
  for (let tick = 1; tick < 10; tick += 1) ls.onInput(tick, 4);
  const now = PERIOD + 0.3;
  assert.equal(ls.view(now).mode, "predict");
  const guessed = ls.predicted(9);
  for (let tick = 1; tick < 10; tick += 1) ls.confirm(tick, [["me", 4]], now);
  assert.deepEqual([ls.rollbacks, ls.mispredictions], [0, 0]);
  assert.equal(ls.state, guessed); // the very state predicted, not a re-simulation
});

test("frames must come in order; inputs aim at the next tick plus the delay", () => {
  const ls = lockstep();
  assert.throws(() => ls.confirm(3, [], 0.1), /expected frame 0/);
  ls.confirm(0, [], PERIOD);
  assert.equal(ls.inputTick(PERIOD, 2), 3);
  assert.ok(ls.inputTick(PERIOD * 5 + 0.001, 2) >= 7);
});

// The `demo` simulation follows its spec (docs/ROOMS.md) exactly, in step with Python:
// the recorded battle's Python digests are reached at every tick.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import test from "node:test";

import { DEMO, DEMO_REPLAY, proto, sims } from "./sdk.mjs";

const { fnv1a64, compareCodePoints, DIGEST_MASK, FNV_OFFSET } = sims;
const utf8 = (text) => new TextEncoder().encode(text);

test("FNV-1a 64 matches the reference vectors", () => {
  // Published test vectors (Fowler/Noll/Vo reference implementation).
  assert.equal(fnv1a64(utf8("")), 0xcbf29ce484222325n);
  assert.equal(fnv1a64(utf8("a")), 0xaf63dc4c8601ec8cn);
  assert.equal(fnv1a64(utf8("foobar")), 0x85944171f73967e8n);
});

function spawn(player) {
  const h = fnv1a64(utf8(player));
  return [Number(h % 64n), Number((h >> 32n) % 64n)];
}

// Expected movement per key combination, from the bit assignments (1 up, 2 down, 4 left,
// 8 right; y grows downwards).
const MOVES = {
  0: [0, 0], 1: [0, -1], 2: [0, 1], 3: [0, 0], 4: [-1, 0], 8: [1, 0], 12: [0, 0],
  5: [-1, -1], 6: [-1, 1], 9: [1, -1], 10: [1, 1], 15: [0, 0],
};

test("a new player spawns at its hash, then moves in the same tick; high bits are ignored", () => {
  const [x, y] = spawn("p1");
  for (const [keys, [dx, dy]] of Object.entries(MOVES)) {
    const state = DEMO.step(DEMO.initial(), 0, [["p1", Number(keys)]]);
    assert.deepEqual([...state.players.get("p1")], [(x + dx + 64) % 64, (y + dy + 64) % 64]);
    assert.ok(DEMO.equals(DEMO.step(DEMO.initial(), 0, [["p1", Number(keys) | 0xfff0]]), state));
  }
});

test("moves wrap at every edge (non-negative modulo)", () => {
  const corner = DEMO.fromData({ grid: 64, players: { p: [0, 0] } });
  assert.deepEqual([...DEMO.step(corner, 0, [["p", 4 | 1]]).players.get("p")], [63, 63]);
  const far = DEMO.fromData({ grid: 64, players: { p: [63, 63] } });
  assert.deepEqual([...DEMO.step(far, 0, [["p", 8 | 2]]).players.get("p")], [0, 0]);
});

test("step returns a new state and keeps absent players where they are", () => {
  const before = DEMO.fromData({ grid: 64, players: { a: [1, 1], b: [5, 5] } });
  const after = DEMO.step(before, 3, [["a", 8]]);
  assert.deepEqual(DEMO.toData(before), { grid: 64, players: { a: [1, 1], b: [5, 5] } });
  assert.deepEqual(DEMO.toData(after), { grid: 64, players: { a: [2, 1], b: [5, 5] } });
  assert.ok(Object.isFrozen(after));
});

test("the digest covers every player in code-point order and is 63 bits", () => {
  assert.equal(DEMO.digest(DEMO.initial()), FNV_OFFSET & DIGEST_MASK);
  const state = DEMO.fromData({ grid: 64, players: { b: [2, 3], a: [0, 1] } });
  const expected = fnv1a64(utf8("a:0:1;b:2:3;")) & DIGEST_MASK;
  assert.equal(DEMO.digest(state), expected);
  // Players named like Object.prototype members are players like any other.
  const odd = DEMO.step(DEMO.initial(), 0, [["__proto__", 8], ["constructor", 1]]);
  assert.equal(odd.players.size, 2);
  assert.ok(DEMO.digest(odd) <= DIGEST_MASK);
  assert.ok(compareCodePoints("\u{1F600}", "\uFFFF") > 0); // UTF-16 units would say < 0
});

test("fromData refuses malformed states", () => {
  assert.throws(() => DEMO.fromData({ grid: 0, players: {} }), /grid/);
  assert.throws(() => DEMO.fromData({ grid: 64 }), /players/);
  assert.throws(() => DEMO.fromData({ grid: 64, players: { a: [64, 0] } }), /bad demo position/);
  assert.throws(() => DEMO.fromData({ grid: 64, players: { a: [true, 0] } }), /bad demo position/);
});

test("the recorded battle reaches Python's digest at every tick", () => {
  const [header, ...lines] = readFileSync(DEMO_REPLAY, "utf8").trim().split("\n").map(proto.parseJson);
  assert.equal(header.sim, "demo");
  let state = DEMO.initial();
  for (const line of lines) {
    state = DEMO.step(state, line.tick, line.inputs);
    assert.equal(typeof line.digest === "bigint" ? line.digest : BigInt(line.digest), DEMO.digest(state), `tick ${line.tick}`);
  }
  assert.equal(lines.length, header.last_tick + 1);
});

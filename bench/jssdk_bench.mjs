// What the JavaScript SDK costs a client per frame (docs/BENCHMARKS.md, "JavaScript SDK").
//
//   node bench/jssdk_bench.mjs            # 7 repeats, medians
//   node bench/jssdk_bench.mjs --repeats 1
//
// Every figure is compared with a baseline measured in the same run: JSON.parse of the same
// text for decoding, and a copy of the same Map (what any immutable step must do) for the
// simulation. Prints nanoseconds per operation (median over repeats, and the worst repeat).
import { DEMO, Room, proto } from "../gamebackend/play/static/gameclient/index.js";

const repeatsArg = process.argv.indexOf("--repeats");
const REPEATS = repeatsArg > 0 ? Number(process.argv[repeatsArg + 1]) : 7;
const PLAYERS = 16; // a room's default max_players
const OPS = 20_000;

const players = Array.from({ length: PLAYERS }, (_, i) => `p-${String(i).padStart(2, "0")}-abcdefgh`);
const inputs = players.map((id, i) => [id, [1, 2, 4, 8, 5, 10][i % 6]]);
const frameText = JSON.stringify({ type: "frame", seq: 123456, room: "arena", tick: 4242, inputs });
const digests = Object.fromEntries(players.map((id, i) => [id, `${7_000_000_000_000_000_000n + BigInt(i)}`]));
const desyncText = JSON.stringify({ type: "desync", seq: 9, room: "arena", tick: 99, server: "x", digests })
  .replace(/"(\d{19})"/g, "$1")
  .replace('"server":"x"', '"server":7000000000000000001');
let state = DEMO.initial();
state = DEMO.step(state, 0, inputs);

function timeNs(ops, body) {
  const started = process.hrtime.bigint();
  for (let i = 0; i < ops; i += 1) body(i);
  return Number(process.hrtime.bigint() - started) / ops;
}

/** A Room fed frames directly (no socket): decode + handle, including the lockstep step. */
function roomUnderTest() {
  const client = { welcome: { player_id: players[0] }, send: async () => {}, request: async () => ({}) };
  const room = new Room(client, "arena", { sim: DEMO, hashEvery: 0 });
  room._onJoined({
    type: "joined", room: "arena", tick_rate: 20, tick: 0, input_delay: 2, late_policy: "shift",
    max_players: 16, members: players, sim: "demo", state: { tick: 0, data: DEMO.toData(DEMO.initial()) },
  });
  return room;
}

const cases = {
  "decode a frame (16 inputs)": {
    baseline: ["JSON.parse", () => JSON.parse(frameText)],
    measured: () => proto.decodeServer(frameText),
  },
  "decode a desync (63-bit digests, BigInt path)": {
    baseline: ["JSON.parse (digests rounded)", () => JSON.parse(desyncText)],
    measured: () => proto.decodeServer(desyncText),
  },
  "demo step (16 players)": {
    baseline: ["copy the players Map", () => new Map(state.players)],
    measured: (i) => DEMO.step(state, i, inputs),
  },
  "demo digest (16 players, FNV-1a on BigInt)": {
    baseline: ["copy the players Map", () => new Map(state.players)],
    measured: () => DEMO.digest(state),
  },
};

const results = {};
for (let repeat = 0; repeat < REPEATS; repeat += 1) {
  for (const [name, { baseline, measured }] of Object.entries(cases)) {
    const base = timeNs(OPS, baseline[1]);
    const value = timeNs(OPS, measured);
    (results[name] ??= { baselineName: baseline[0], base: [], value: [] }).base.push(base);
    results[name].value.push(value);
  }
  // A whole frame through Room.handle (decode, order check, lockstep confirm = one step).
  const room = roomUnderTest();
  const texts = Array.from({ length: 2000 }, (_, tick) => frameText.replace('"tick":4242', `"tick":${tick}`));
  const base = timeNs(texts.length, (i) => JSON.parse(texts[i]));
  const started = process.hrtime.bigint();
  for (const text of texts) await room.handle(proto.decodeServer(text));
  const value = Number(process.hrtime.bigint() - started) / texts.length;
  const name = "a frame through Room.handle (decode + confirm)";
  (results[name] ??= { baselineName: "JSON.parse", base: [], value: [] }).base.push(base);
  results[name].value.push(value);
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const fmt = (ns) => (ns >= 1000 ? `${(ns / 1000).toFixed(1)} µs` : `${ns.toFixed(0)} ns`);
console.log(`node ${process.version}, ${REPEATS} repeats, ${PLAYERS} players`);
console.log("| operation | SDK (median, worst) | baseline (median) | ratio |");
console.log("| --- | --- | --- | --- |");
for (const [name, r] of Object.entries(results)) {
  const m = median(r.value);
  const b = median(r.base);
  console.log(`| ${name} | ${fmt(m)}, ${fmt(Math.max(...r.value))} | ${r.baselineName}: ${fmt(b)} | ${(m / b).toFixed(1)} |`);
}

// Room bookkeeping against a scripted client (no sockets), the same cases as the Python
// SDK's tests/gameclient/test_room.py: joins, gaps, hashes, members, stalls.
import assert from "node:assert/strict";
import test from "node:test";

import { DEMO, GameError, Room } from "./sdk.mjs";

const welcome = (resumed, session = "s") => ({
  type: "welcome", session_id: session, player_id: "me", node: "n", heartbeat_s: 15, resumed, last_seq: 0,
});

/** Answers requests from a script and records what the room sends. */
class ScriptedClient {
  constructor() {
    this.welcome = welcome(false);
    this.sent = [];
    this.requests = [];
    this.tick = 5;
    this.history = [];
    this.tooOld = false;
  }

  async request(msg) {
    this.requests.push(msg);
    if (msg.type === "join") {
      return {
        type: "joined", seq: 1, room: msg.room, tick_rate: 20, tick: this.tick, input_delay: 2,
        late_policy: "shift", max_players: 16, members: ["me"], sim: "demo",
        state: { tick: this.tick, data: DEMO.toData(DEMO.initial()) },
      };
    }
    if (msg.type === "sync") {
      if (this.tooOld) throw new GameError("sync_too_old", "too old");
      return { type: "frames", seq: 2, room: msg.room, frames: this.history.filter((f) => f.tick >= msg.from_tick) };
    }
    return { type: "ok", seq: 3 };
  }

  async send(msg) {
    this.sent.push(msg);
  }
}

class Clock {
  now = 100;
  read = () => this.now;
}

const frame = (tick, inputs = []) => ({ type: "frame", seq: tick + 10, room: "arena", tick, inputs });

async function joinedRoom(hashEvery = 0) {
  const client = new ScriptedClient();
  const clock = new Clock();
  const quiet = { warn() {} };
  const room = new Room(client, "arena", { sim: DEMO, hashEvery, clock: clock.read, logger: quiet });
  await room.join();
  return { room, client, clock };
}

test("frames are applied in order and hashes reported every N ticks", async () => {
  const { room, client, clock } = await joinedRoom(3);
  let state = DEMO.initial();
  const digests = new Map();
  for (let tick = 5; tick < 12; tick += 1) {
    clock.now += 0.05;
    assert.equal(await room.handle(frame(tick, [["me", 8]])), true);
    state = DEMO.step(state, tick, [["me", 8]]);
    digests.set(tick, DEMO.digest(state));
  }
  assert.deepEqual(DEMO.toData(room.state), DEMO.toData(state));
  assert.equal(room.nextTick, 12);
  const hashes = client.sent.filter((m) => m.type === "hash");
  assert.deepEqual(hashes.map((h) => h.tick), [5, 8, 11]); // (tick + 1) % 3 === 0
  for (const h of hashes) assert.equal(h.h, digests.get(h.tick));
});

test("a gap is filled with sync, and one too old by joining again", async () => {
  const { room, client } = await joinedRoom();
  client.history = [5, 6, 7, 8].map((tick) => ({ tick, inputs: [["me", 2]] }));
  await room.handle(frame(9));
  assert.equal(client.requests.at(-1).type, "sync");
  assert.equal(client.requests.at(-1).from_tick, 5);
  assert.equal(room.nextTick, 10);
  let expected = DEMO.initial();
  for (let tick = 5; tick < 9; tick += 1) expected = DEMO.step(expected, tick, [["me", 2]]);
  assert.deepEqual(DEMO.toData(room.state), DEMO.toData(DEMO.step(expected, 9, [])));
  client.tooOld = true;
  client.tick = 50;
  await room.handle(frame(40));
  assert.equal(client.requests.at(-1).type, "join");
  assert.equal(room.nextTick, 50); // the re-join's state; the old frame is dropped
});

test("a new session joins again; other rooms' messages are ignored", async () => {
  const { room, client } = await joinedRoom();
  assert.equal(await room.handle({ ...frame(5), room: "other" }), false);
  // The welcome of the session the room joined on (still in the app's queue) is no news.
  assert.equal(await room.handle(client.welcome), false);
  assert.deepEqual(client.requests.map((r) => r.type), ["join"]);
  assert.equal(await room.handle(welcome(false, "s2")), true);
  assert.deepEqual(client.requests.map((r) => r.type), ["join", "join"]);
  assert.equal(await room.handle(welcome(true, "s2")), false);
  // Restored on another node: the room still sends to the old node until a re-join.
  assert.equal(await room.handle({ ...welcome(true, "s2"), restored: true }), true);
  assert.deepEqual(client.requests.map((r) => r.type), ["join", "join", "join"]);
});

test("members, chat, desync and stall detection", async () => {
  const { room, clock } = await joinedRoom();
  await room.handle({ type: "member_joined", seq: 1, room: "arena", player_id: "you", tick: 5 });
  assert.deepEqual(room.members, ["me", "you"]);
  await room.handle({ type: "member_left", seq: 2, room: "arena", player_id: "you", tick: 6 });
  assert.deepEqual(room.members, ["me"]);
  await room.handle({ type: "chat", seq: 3, room: "arena", player_id: "me", text: "hi" });
  await room.handle({ type: "desync", seq: 4, room: "arena", tick: 5, digests: { me: 1n }, server: 2n });
  assert.deepEqual(room.chat.map((c) => c.text), ["hi"]);
  assert.equal(room.desyncs[0].server, 2n);
  await room.handle(frame(5));
  assert.equal(room.stalled(), false);
  clock.now += 0.9;
  assert.equal(room.stalled(), false);
  clock.now += 0.2;
  assert.equal(room.stalled(), true); // over a second without a frame
});

test("inputs aim past the input delay, go into the buffer, and need a join", async () => {
  const client = new ScriptedClient();
  const clock = new Clock();
  const room = new Room(client, "arena", { sim: DEMO, clock: clock.read });
  await assert.rejects(room.sendInput(1), /join/);
  await room.join();
  const tick = await room.sendInput(4);
  assert.ok(tick >= 5 + 2);
  assert.deepEqual(client.sent.at(-1), { type: "input", room: "arena", tick, keys: 4 });
  assert.equal(room.inputs.get(tick), 4);
  assert.equal(room.view().mode, "interpolate");
});

// GameClient against a scripted server with mocked timers: lazy acks, heartbeats,
// reconnect with a fresh ticket and resume, exactly-once delivery, requests.
import assert from "node:assert/strict";
import test from "node:test";

import { Backoff, ClientClosed, GameClient, GameError, SessionLost, proto } from "./sdk.mjs";
import { FakeServer, flush, silent, welcome } from "./fakes.mjs";

const WS_URL = "ws://node.test/ws/game/";

/** A client on a fake server, with a clock that moves with the mocked timers. */
async function setup(t, { heartbeatS = 15, ...options } = {}) {
  t.mock.timers.enable({ apis: ["setTimeout"] });
  const server = new FakeServer();
  const clock = { now: 0 };
  let tickets = 0;
  const client = new GameClient(WS_URL, async () => `ticket-${++tickets}`, {
    WebSocket: server.WebSocket,
    backoff: new Backoff({ baseS: 0.01, capS: 0.01, jitter: 0 }),
    clock: () => clock.now,
    logger: silent,
    ...options,
  });
  const advance = async (ms, step = 5) => {
    for (let done = 0; done < ms; done += step) {
      const dt = Math.min(step, ms - done);
      clock.now += dt / 1000;
      t.mock.timers.tick(dt);
      await flush(2);
    }
  };
  const socketPromise = server.nextSocket();
  const connected = client.connect();
  const ws = await socketPromise;
  ws.accept();
  ws.deliver(welcome({ heartbeat_s: heartbeatS }));
  await connected;
  assert.deepEqual(await client.recv(), welcome({ heartbeat_s: heartbeatS }));
  t.after(() => client.close());
  return { client, server, ws, advance };
}

const state = (seq, extra = {}) => ({ type: "state", seq, player_id: "me", x: 1, y: 2, rev: seq, ...extra });
const acks = (ws) => ws.take().filter((m) => m.type === "ack").map((m) => m.seq);

test("the first connect carries a fresh ticket and offers the JSON subprotocol", async (t) => {
  const { ws } = await setup(t);
  assert.equal(ws.url.searchParams.get("ticket"), "ticket-1");
  assert.equal(ws.url.searchParams.get("resume"), null);
  assert.deepEqual(ws.protocols, ["game.v1.json"]);
});

test("acks ride on outgoing messages, else go 250 ms after the first unacked one", async (t) => {
  const { client, ws, advance } = await setup(t);
  ws.deliver(state(1));
  assert.equal((await client.recv()).seq, 1);
  await advance(245);
  assert.deepEqual(acks(ws), []);
  ws.deliver(state(2)); // within the window: covered by the same ack
  await advance(10);
  assert.deepEqual(acks(ws), [2]);
  await advance(1000);
  assert.deepEqual(ws.take(), []); // nothing new: no ack frames

  ws.deliver(state(3));
  ws.deliver(state(4));
  await client.send(proto.move(5, 6));
  assert.deepEqual(ws.take(), [{ type: "move", x: 5, y: 6, ack: 4 }]);
  await advance(500);
  assert.deepEqual(ws.take(), []); // the piggybacked ack was enough
});

test("256 unacked messages are acked at once", async (t) => {
  const { ws } = await setup(t);
  for (let seq = 1; seq <= 255; seq += 1) ws.deliver(state(seq));
  assert.deepEqual(acks(ws), []);
  ws.deliver(state(256));
  assert.deepEqual(acks(ws), [256]);
});

test("server pings are answered; a silent server is pinged, then dropped and resumed", async (t) => {
  const { client, server, ws, advance } = await setup(t, { heartbeatS: 1 });
  ws.deliver({ type: "ping", ts: 42 });
  assert.deepEqual(ws.take(), [{ type: "pong", ts: 42 }]);
  ws.deliver(state(1));
  ws.deliver(state(2));
  assert.deepEqual([(await client.recv()).seq, (await client.recv()).seq], [1, 2]);
  await advance(300); // the ack of 1..2 went out
  assert.deepEqual(acks(ws), [2]);
  await advance(800); // 1 s after the last server frame: the client pings
  const pings = ws.take();
  assert.equal(pings.length, 1);
  assert.equal(pings[0].type, "ping");
  ws.deliver({ type: "pong", ts: pings[0].ts }); // any frame is liveness
  const next = server.nextSocket();
  await advance(3200); // 3 x 1 s (+10 %) of silence: dead
  assert.equal(ws.closedWith, 4408);
  assert.equal(client.status, "reconnecting");
  const again = await next;
  assert.equal(again.url.searchParams.get("ticket"), "ticket-2"); // a fresh ticket
  assert.equal(again.url.searchParams.get("resume"), "s1");
  assert.equal(again.url.searchParams.get("last_seq"), "2");
  again.accept();
  again.deliver(welcome({ resumed: true, last_seq: 3, heartbeat_s: 1 }));
  assert.equal((await client.recv()).resumed, true);
  again.deliver(state(2)); // already delivered before the drop
  again.deliver(state(3));
  assert.equal((await client.recv()).seq, 3); // exactly once, in order
  await advance(300);
  assert.deepEqual(acks(again), [3]);
});

test("a server that keeps talking is neither pinged nor dropped", async (t) => {
  const { client, ws, advance } = await setup(t, { heartbeatS: 1 });
  for (let seq = 1; seq <= 20; seq += 1) {
    ws.deliver(state(seq)); // any frame is liveness (no server ping needed)
    await advance(500);
  }
  assert.deepEqual(ws.take().filter((m) => m.type === "ping"), []);
  assert.equal(ws.closedWith, null);
  assert.equal(client.status, "open");
});

test("a skipped seq drops the connection and resumes from the last seq seen", async (t) => {
  const { client, server, ws, advance } = await setup(t);
  ws.deliver(state(1));
  const next = server.nextSocket();
  ws.deliver(state(3));
  assert.equal(ws.closedWith, 4001); // not 1000: the session stays resumable
  await advance(20);
  const again = await next;
  assert.equal(again.url.searchParams.get("last_seq"), "1");
  again.accept();
  again.deliver(welcome({ resumed: true, last_seq: 3 }));
  again.deliver(state(2));
  again.deliver(state(3));
  const seqs = [];
  for (let i = 0; i < 4; i += 1) {
    const msg = await client.recv();
    seqs.push(msg.type === "welcome" ? "welcome" : msg.seq);
  }
  assert.deepEqual(seqs, [1, "welcome", 2, 3]);
});

test("requests are answered by re; errors reject; a new session fails the ones sent", async (t) => {
  const { client, server, ws, advance } = await setup(t);
  const joined = client.request(proto.join("arena"));
  await flush();
  const [join] = ws.take();
  assert.equal(join.id, 1);
  ws.deliver({ type: "joined", seq: 1, re: 1, room: "arena", tick_rate: 20, tick: 0, input_delay: 2, late_policy: "shift", max_players: 16, members: ["me"] });
  assert.equal((await joined).room, "arena");

  const full = client.request(proto.join("full"));
  await flush();
  ws.deliver({ type: "error", seq: 2, re: 2, code: "room_full", message: "full" });
  await assert.rejects(full, (e) => e instanceof GameError && e.code === "room_full");

  const lost = client.request(proto.stateReq());
  await flush();
  const next = server.nextSocket();
  ws.drop(1006);
  await advance(20);
  const again = await next;
  again.accept();
  again.deliver(welcome({ session_id: "s2" })); // not resumed: a new session
  await assert.rejects(lost, SessionLost);
  assert.equal(client.sessionId, "s2");
  assert.equal(client.lastSeq, 0);
});

test("a restored resume fails requests whose replies were lost, once the replay is in", async (t) => {
  const { client, server, ws, advance } = await setup(t);
  ws.deliver(state(1));
  const answered = client.request(proto.stateReq());
  const lost = client.request(proto.stateReq());
  await flush();
  const next = server.nextSocket();
  ws.drop(1006); // the node died; it had numbered the first reply (seq 2) in time
  await advance(20);
  const again = await next;
  again.accept();
  again.deliver(welcome({ resumed: true, restored: true, last_seq: 2 }));
  again.deliver(state(2, { re: 1 })); // replayed from L2
  assert.equal((await answered).seq, 2);
  await assert.rejects(lost, SessionLost); // its reply fell in the loss window
  assert.equal(client.sessionId, "s1");
  again.deliver(state(3)); // the session goes on
  await flush();
  assert.equal(client.lastSeq, 3);
});

test("sends wait for a connection and go out on the next one", async (t) => {
  const { client, server, ws, advance } = await setup(t);
  const next = server.nextSocket();
  ws.drop(1006);
  const sending = client.send(proto.input("arena", 3, 8));
  await advance(20);
  const again = await next;
  again.accept();
  again.deliver(welcome({ resumed: true }));
  await sending;
  assert.deepEqual(again.take(), [{ type: "input", room: "arena", tick: 3, keys: 8 }]);
});

test("4409 (replaced) is final: no reconnect, queued pushes first, then ClientClosed", async (t) => {
  const { client, server, ws, advance } = await setup(t);
  ws.deliver(state(1));
  ws.drop(4409);
  await advance(100);
  assert.equal(server.sockets.length, 1);
  assert.equal(client.status, "closed");
  assert.equal(client.closeCode, 4409);
  assert.equal((await client.recv()).seq, 1);
  await assert.rejects(client.recv(), (e) => e instanceof ClientClosed && e.closeCode === 4409);
  await assert.rejects(client.send(proto.stateReq()), ClientClosed);
});

test("a notice (an operator's message) is a notice event and a message; 4000 (kicked) is final", async (t) => {
  const { client, server, ws, advance } = await setup(t);
  const notices = [];
  client.addEventListener("notice", (event) => notices.push(event.detail));
  ws.deliver({ type: "notice", seq: 1, text: "maintenance at noon" });
  assert.deepEqual(await client.recv(), { type: "notice", seq: 1, text: "maintenance at noon" });
  assert.deepEqual(notices, [{ seq: 1, text: "maintenance at noon" }]);
  ws.drop(4000);
  await advance(100);
  assert.equal(server.sockets.length, 1);
  assert.equal(client.status, "closed");
  assert.equal(client.closeCode, 4000);
});

test("close() ends the session with 1000", async (t) => {
  const { client, ws } = await setup(t);
  await client.close();
  assert.equal(ws.closedWith, 1000);
  const seen = [];
  for await (const msg of client) seen.push(msg);
  assert.deepEqual(seen, []);
});

test("a first connect that is refused rejects", async (t) => {
  t.mock.timers.enable({ apis: ["setTimeout"] });
  const server = new FakeServer();
  const client = new GameClient(WS_URL, async () => "t", { WebSocket: server.WebSocket, logger: silent });
  const socket = server.nextSocket();
  const connecting = client.connect();
  (await socket).drop(1006); // e.g. the upgrade was refused with 403
  await assert.rejects(connecting, /before the welcome \(code 1006\)/);
  assert.equal(client.status, "closed");
});

test("ping() measures the round trip", async (t) => {
  const { client, ws, advance } = await setup(t);
  const rtt = client.ping();
  await flush();
  const [ping] = ws.take();
  await advance(30);
  ws.deliver({ type: "pong", ts: ping.ts, re: ping.id });
  assert.ok(Math.abs((await rtt) - 30) < 1e-6);
});

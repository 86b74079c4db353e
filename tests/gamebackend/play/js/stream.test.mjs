// The session bookkeeping as pure logic (the Python SDK's tests/gameclient/test_stream.py
// and test_backoff.py): dedupe, acks, liveness, backoff, the connect URL.
import assert from "node:assert/strict";
import test from "node:test";

import { stream } from "./sdk.mjs";

const { Backoff, HeartbeatMonitor, InboundStream, SequenceGap, buildUrl, shouldReconnect } = stream;

test("the inbound stream delivers each seq once, in order, and acks cumulatively", () => {
  const s = new InboundStream();
  assert.equal(s.takeAck(), null);
  assert.equal(s.accept(1), true);
  assert.equal(s.accept(2), true);
  assert.equal(s.accept(2), false); // a duplicate after a resume
  assert.throws(() => s.accept(4), SequenceGap);
  assert.equal(s.unacked, 2);
  assert.equal(s.takeAck(), 2);
  assert.equal(s.takeAck(), null);
  s.onResumed(); // a new connection of the session: ack again
  assert.equal(s.takeAck(), 2);
  for (let seq = 3; seq < 3 + 256; seq += 1) s.accept(seq);
  assert.equal(s.ackUrgent(), true);
  s.reset();
  assert.equal(s.accept(1), true);
});

test("liveness: ping after a silent interval, dead after three (plus slack)", () => {
  const hb = new HeartbeatMonitor(10, 100);
  assert.equal(hb.pingDue(109.9), false);
  assert.equal(hb.pingDue(110), true);
  hb.onPingSent(110);
  assert.equal(hb.pingAt, 120); // once per silent interval
  hb.onFrame(115); // any frame
  assert.equal(hb.pingAt, 125);
  assert.equal(hb.isDead(115 + 30.9), false);
  assert.equal(hb.isDead(115 + 31), true);
});

test("backoff doubles up to its cap, with jitter below the nominal delay", () => {
  const b = new Backoff({ random: () => 0 });
  assert.deepEqual([0, 1, 2, 3, 4, 5, 6].map(() => b.nextDelay()), [1, 2, 4, 8, 16, 30, 30]);
  b.reset();
  assert.equal(b.nextDelay(), 1);
  assert.equal(new Backoff({ random: () => 1 }).nextDelay(), 0.75);
  assert.equal(new Backoff().nominal(10_000), 30);
  assert.throws(() => new Backoff({ factor: 0.5 }), RangeError);
});

test("reconnect policy and the connect URL", () => {
  assert.equal(shouldReconnect(1000), false);
  assert.equal(shouldReconnect(4409), false);
  for (const code of [1001, 1006, 1011, 4408, 4413, 4429]) assert.equal(shouldReconnect(code), true);
  assert.equal(buildUrl("ws://h:1/ws/game/", "a.b c"), "ws://h:1/ws/game/?ticket=a.b+c");
  assert.equal(
    buildUrl("wss://h/ws/game/?x=1", "t", { resume: "s", lastSeq: 9 }),
    "wss://h/ws/game/?x=1&ticket=t&resume=s&last_seq=9",
  );
});

// The mirrored wire contract: builders check what the server's schemas check, and JSON
// keeps 64-bit integers exact both ways.
import assert from "node:assert/strict";
import test from "node:test";

import { ProtocolError, proto } from "./sdk.mjs";

function refused(build, field) {
  assert.throws(build, (error) => error instanceof ProtocolError && error.code === "invalid" && error.field === field);
}

test("builders omit empty fields and check ranges, naming the field as the server would", () => {
  assert.deepEqual(proto.join("arena"), { type: "join", room: "arena" });
  assert.deepEqual(proto.join("arena", { sim: "demo", tick_rate: 30 }), {
    type: "join",
    room: "arena",
    create: { sim: "demo", tick_rate: 30 },
  });
  refused(() => proto.join("no spaces"), "room");
  refused(() => proto.join("x".repeat(65)), "room");
  refused(() => proto.join("arena", { tick_rate: 61 }), "create.tick_rate");
  refused(() => proto.join("arena", { max_players: 0 }), "create.max_players");
  refused(() => proto.join("arena", { input_delay: 11 }), "create.input_delay");
  refused(() => proto.join("arena", { late_policy: "later" }), "create.late_policy");
  refused(() => proto.join("arena", { sim: "" }), "create.sim");
  refused(() => proto.join("arena", { tickrate: 20 }), "create.tickrate");
  refused(() => proto.input("arena", -1, 0), "tick");
  refused(() => proto.input("arena", 1.5, 0), "tick");
  refused(() => proto.input("arena", 3, 65536), "keys");
  refused(() => proto.input("arena", 3, "8"), "keys");
  refused(() => proto.hash("arena", 3, 2n ** 63n), "h");
  refused(() => proto.chat("arena", ""), "text");
  refused(() => proto.move(Number.NaN, 1), "x");
  refused(() => proto.checkClientMessage({ type: "fly" }), "type");
  refused(() => proto.checkClientMessage({ type: "state", id: "x".repeat(65) }), "id");
  // Chat length counts code points, like the server: 256 emoji are fine, 257 are not.
  assert.equal(proto.chat("arena", "\u{1F600}".repeat(256)).text.length, 512);
  refused(() => proto.chat("arena", "\u{1F600}".repeat(257)), "text");
});

test("JSON keeps integers beyond 2^53 exact, and leaves strings and floats alone", () => {
  const text = '{"a":12345678901234567890,"b":"12345678901234567890 \\"9999999999999999999\\"","c":-9223372036854775807,"d":1.5e300,"e":9007199254740991,"f":[18446744073709551615]}';
  const parsed = proto.parseJson(text);
  assert.equal(parsed.a, 12345678901234567890n);
  assert.equal(parsed.b, '12345678901234567890 "9999999999999999999"');
  assert.equal(parsed.c, -9223372036854775807n);
  assert.equal(parsed.d, 1.5e300);
  assert.equal(parsed.e, Number.MAX_SAFE_INTEGER); // safe integers stay numbers
  assert.deepEqual(parsed.f, [18446744073709551615n]);
  assert.equal(proto.stringifyJson({ h: 9223372036854775807n, t: "x" }), '{"h":9223372036854775807,"t":"x"}');
  assert.throws(() => proto.parseJson('{"a":12345678901234567890'), SyntaxError);
});

test("server frames: required fields, digests as BigInt, unknown types passed on", () => {
  const desync = proto.decodeServer('{"type":"desync","seq":4,"room":"r","tick":9,"digests":{"a":1,"b":9223372036854775807},"server":5}');
  assert.deepEqual(desync.digests, { a: 1n, b: 9223372036854775807n });
  assert.equal(desync.server, 5n);
  const unknown = proto.decodeServer('{"type":"confetti","seq":5,"colour":"red"}');
  assert.equal(proto.isKnownServerType(unknown.type), false);
  assert.equal(unknown.colour, "red");
  assert.throws(() => proto.decodeServer("[1]"), (e) => e.code === "bad_message");
  assert.throws(() => proto.decodeServer("{nope"), (e) => e.code === "bad_message");
  assert.throws(() => proto.decodeServer('{"type":"frame","seq":1.5,"room":"r","tick":1,"inputs":[]}'), (e) => e.code === "bad_message");
  // A known message missing a field is refused, but its seq is kept for the stream.
  assert.throws(
    () => proto.decodeServer('{"type":"frame","seq":7,"room":"r"}'),
    (e) => e.code === "bad_message" && e.seq === 7,
  );
});

test("encode writes the checked message with BigInt digests as integers", () => {
  assert.equal(proto.encode(proto.hash("r", 9, 5472609002491880229n)), '{"type":"hash","room":"r","tick":9,"h":5472609002491880229}');
  assert.throws(() => proto.encode({ type: "input", room: "r", tick: 1 }), ProtocolError);
});

// TicketSource's rules against a scripted auth API (fetch injected): log in once, refresh
// on every later ticket, log in again when the session is gone, never run two at once.
// The real node's API: tests/gamebackend/play/test_js_sdk_e2e.py.
import assert from "node:assert/strict";
import test from "node:test";

import { AuthError, TicketSource } from "./sdk.mjs";

function api(handler) {
  const calls = [];
  const fetch = async (url, init) => {
    const endpoint = new URL(url).pathname;
    const body = JSON.parse(init.body);
    calls.push([endpoint, body]);
    await new Promise((resolve) => setImmediate(resolve)); // answers arrive later
    const [status, answer] = handler(endpoint, body, calls.length);
    return new Response(answer === null ? "" : JSON.stringify(answer), { status });
  };
  return { calls, fetch };
}

const login = (n) => ({ player_id: "p-1", ticket: `ticket-${n}`, expires_in: 30, refresh_token: `rt-${n}`, refresh_expires_in: 9 });

test("a device logs in once, then every ticket comes from the refresh token", async () => {
  const { calls, fetch } = api((endpoint, body, n) => [200, login(n)]);
  const saved = [];
  const tickets = TicketSource.device("http://node.test/", "device-0001", { fetch, onRefreshToken: (t) => saved.push(t) });
  // Two reconnects at once: serialised, so no refresh token is spent twice.
  assert.deepEqual(await Promise.all([tickets.ticket(), tickets.ticket()]), ["ticket-1", "ticket-2"]);
  assert.deepEqual(calls, [
    ["/api/auth/device", { device_id: "device-0001" }],
    ["/api/auth/refresh", { refresh_token: "rt-1" }],
  ]);
  assert.deepEqual(saved, ["rt-1", "rt-2"]);
  assert.equal(tickets.playerId, "p-1");
  assert.equal(tickets.refreshToken, "rt-2");
});

test("a refused refresh logs in again with the credentials; a guest's refusal reaches the app", async () => {
  const refusal = { error: { code: "bad_refresh_token", message: "log in again" } };
  const device = api((endpoint, body, n) => (endpoint.endsWith("refresh") ? [401, refusal] : [200, login(n)]));
  const tickets = TicketSource.device("http://node.test", "device-0001", { fetch: device.fetch });
  await tickets.ticket();
  assert.equal(await tickets.ticket(), "ticket-3");
  assert.deepEqual(device.calls.map(([endpoint]) => endpoint), ["/api/auth/device", "/api/auth/refresh", "/api/auth/device"]);

  const guest = api((endpoint, body, n) => (endpoint.endsWith("refresh") ? [401, refusal] : [201, login(n)]));
  const visitor = TicketSource.guest("http://node.test", "Ada", { fetch: guest.fetch });
  assert.equal(await visitor.ticket(), "ticket-1");
  assert.deepEqual(guest.calls[0], ["/api/auth/guest", { name: "Ada" }]);
  await assert.rejects(visitor.ticket(), (e) => e instanceof AuthError && e.status === 401 && e.code === "bad_refresh_token");
});

test("API errors carry their code, field and retry time; garbage is an http_error", async () => {
  const limited = api(() => [429, { error: { code: "rate_limited", message: "slow down", retry_after_ms: 1500 } }]);
  await assert.rejects(
    TicketSource.device("http://node.test", "device-0001", { fetch: limited.fetch }).ticket(),
    (e) => e.code === "rate_limited" && e.retryAfterMs === 1500 && e.status === 429,
  );
  const broken = { fetch: async () => new Response("<html>bad gateway</html>", { status: 502 }) };
  await assert.rejects(TicketSource.guest("http://node.test", null, broken).ticket(), (e) => e.code === "http_error");
  assert.throws(() => TicketSource.device("ws://node.test", "d"), /http/);
  assert.throws(() => new TicketSource("http://node.test", { username: "a", fetch: limited.fetch }), /together/);
});

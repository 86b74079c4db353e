// A JavaScript SDK player for tests/gamebackend/play/test_js_sdk_e2e.py (run by pytest with
// `node --experimental-websocket`, against a real node): logs in with a device id, joins a
// demo room, sends an input per frame, drops its connection once midway (the SDK
// reconnects with a refreshed ticket and resumes), plays up to a tick, and prints one JSON
// line of what happened. Argument: a JSON object {http, ws, room, keys, until or frames, dropAt?}.
import { Backoff, DEMO, GameClient, Room, TicketSource } from "./sdk.mjs";

const args = JSON.parse(process.argv[2]);
const refreshTokens = [];
const tickets = TicketSource.device(args.http, `e2e-js-${process.pid}-${Date.now()}`, {
  onRefreshToken: (token) => refreshTokens.push(token),
});
const quiet = { info() {}, warn: (...a) => console.error(...a), error: (...a) => console.error(...a) };
const client = new GameClient(args.ws, tickets, {
  backoff: new Backoff({ baseS: 0.01, capS: 0.05 }),
  logger: quiet,
});
await client.connect();
const welcomes = []; // every welcome, as the client hands them to the application
const room = new Room(client, args.room, { sim: DEMO, hashEvery: 5 });
const joined = await room.join({ sim: "demo", tick_rate: 30, input_delay: 1 });
const until = args.until ?? joined.tick + args.frames; // absolute, or frames from the join
const dropAt = args.dropAt ?? joined.tick + Math.floor(args.frames / 2);
const ticks = [];
let dropped = false;
while (room.nextTick <= until) {
  const msg = await client.recv();
  if (msg.type === "welcome") welcomes.push(msg);
  const before = room.nextTick;
  await room.handle(msg);
  if (msg.type === "frame" && msg.room === args.room) ticks.push(msg.tick);
  if (room.nextTick > before && room.nextTick <= until) await room.sendInput(args.keys);
  if (!dropped && room.nextTick >= dropAt) {
    // The connection drops (the SDK's own drop, as after a heartbeat timeout: it closes
    // with 4001, which keeps the session, and reconnects at once).
    dropped = true;
    client._drop(client._ws, 4001, "dropped by the test");
  }
}
const state = room.state;
console.log(
  JSON.stringify({
    player: welcomes[0].player_id,
    joinedTick: joined.tick,
    ticks,
    welcomes: welcomes.map((w) => ({ session: w.session_id, resumed: w.resumed, player: w.player_id })),
    refreshTokens: refreshTokens.length,
    state: DEMO.toData(state),
    digest: String(DEMO.digest(state)),
    nextTick: room.nextTick,
    hashesSent: room.hashesSent,
    desyncs: room.desyncs.length,
  }),
);
await client.close();

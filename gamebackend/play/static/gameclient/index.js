// gameclient for JavaScript: the browser (and Node) SDK of the game server, as plain ES
// modules with no build step and no dependencies. The same pieces as the Python SDK
// (`gameclient/`), with the same rules: docs/PROTOCOL.md (the wire contract) and
// docs/ROOMS.md (rooms, lockstep, the `demo` simulation).
//
//   import { GameClient, TicketSource, Room, DEMO } from "/static/gameclient/index.js";
//
//   const tickets = TicketSource.device(location.origin, deviceId);
//   const client = new GameClient(`ws://${location.host}/ws/game/`, tickets);
//   await client.connect();
//   const room = new Room(client, "arena", { sim: DEMO });
//   await room.join({ sim: "demo" });
//   for await (const msg of client) await room.handle(msg);

export { TicketSource } from "./auth.js";
export { CLOSE_RESUME, ConnectFailed, GameClient } from "./client.js";
export {
  INPUT_BUFFER_SIZE,
  InputBuffer,
  Lockstep,
  ROLLBACK_AFTER_S,
  View,
  interpolate,
  lerpAngle,
  lerpWrapped,
} from "./lockstep.js";
export * as proto from "./proto.js";
export { CloseCode, ErrorCode, ProtocolError } from "./proto.js";
export { Room } from "./room.js";
export { DEMO, DemoSim, SIMS, fnv1a64 } from "./sims.js";
export {
  AuthError,
  Backoff,
  ClientClosed,
  GameError,
  RequestTimeout,
  SessionLost,
} from "./stream.js";

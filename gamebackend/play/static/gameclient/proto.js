// The wire contract, mirrored from the Python package `gameproto/` (codes.py,
// messages.py, rooms.py) and docs/PROTOCOL.md: subprotocol, close and error codes, limits,
// the fields of every message, builders that check what the server's schemas check, and
// the JSON codec. tests/gamebackend/play/test_js_mirror.py compares the field lists below
// with the msgspec schemas, so a change there fails CI until it is made here too.
//
// Integers beyond 2^53 (digests: 63 bits) travel as exact JSON integers. `parseJson`
// turns those into BigInt (plain JSON.parse would round them), `encode` writes BigInt
// values as JSON integers. Digests are BigInt everywhere in this SDK.

/** The only codec a browser needs: text frames of JSON (msgpack is for native clients). */
export const JSON_SUBPROTOCOL = "game.v1.json";

export const CloseCode = Object.freeze({
  NORMAL: 1000, // the client ends the session; not resumable
  KICKED: 4000, // an operator ended the session (the reason is theirs): never reconnect
  GOING_AWAY: 1001, // server shutting down; resumable
  TOO_BIG: 1009,
  INTERNAL_ERROR: 1011, // the server could not set the session up; retry
  TRY_AGAIN_LATER: 1013, // the node's flush backlog is over its bound; retry with backoff
  BAD_MESSAGES: 4400,
  HEARTBEAT_TIMEOUT: 4408,
  REPLACED: 4409, // a newer connection of this player took over: never reconnect
  OUTBOX_FULL: 4413, // the session ended: reconnect gets a new one
  RATE_LIMITED: 4429,
});

export const ErrorCode = Object.freeze({
  BAD_MESSAGE: "bad_message",
  UNKNOWN_TYPE: "unknown_type",
  INVALID: "invalid",
  RATE_LIMITED: "rate_limited",
  BUSY: "busy",
  INTERNAL: "internal",
  CIRCUIT_OPEN: "circuit_open",
  ROOM_FULL: "room_full",
  SYNC_TOO_OLD: "sync_too_old",
});

// gameproto/codes.py and gameproto/rooms.py
export const MAX_ID_LENGTH = 64;
export const INT64_MAX = (1n << 63n) - 1n;
export const ROOM_ID_PATTERN = /^[A-Za-z0-9_.:-]{1,64}$/;
export const MAX_TICK_RATE = 60;
export const DEFAULT_TICK_RATE = 20;
export const MAX_PLAYERS_LIMIT = 64;
export const DEFAULT_MAX_PLAYERS = 16;
export const MAX_INPUT_DELAY = 10;
export const DEFAULT_INPUT_DELAY = 2;
export const LATE_POLICIES = Object.freeze(["shift", "drop"]);
export const ROOM_HISTORY = 128;
export const MAX_INPUT_AHEAD = 128;
export const KEYS_MAX = 0xffff;
export const MAX_CHAT_CHARS = 256;
export const DIGEST_MAX = (1n << 63n) - 1n;
export const MAX_SIM_NAME = 64;

// Fields every client message may carry besides its own: `id` makes it a request,
// `ack` piggybacks a cumulative acknowledgement.
export const CLIENT_BASE_FIELDS = Object.freeze(["id", "ack"]);

const spec = (required, optional = []) => Object.freeze({ required, optional });

/** Client -> server messages: `type` -> its own fields (gameproto ClientMessage subclasses). */
export const CLIENT_MESSAGES = Object.freeze({
  ack: spec(["seq"]),
  ping: spec(["ts"]),
  pong: spec(["ts"]),
  move: spec(["x", "y"]),
  state: spec([]),
  join: spec(["room"], ["create"]),
  leave: spec(["room"]),
  input: spec(["room", "tick", "keys"]),
  sync: spec(["room", "from_tick"]),
  hash: spec(["room", "tick", "h"]),
  chat: spec(["room", "text"]),
});

/** Server -> client messages: `type` -> fields (gameproto ServerMessage subclasses). */
export const SERVER_MESSAGES = Object.freeze({
  welcome: spec(["session_id", "player_id", "node", "heartbeat_s", "resumed", "last_seq"], ["restored"]),
  state: spec(["seq", "player_id", "x", "y", "rev"], ["re"]),
  ok: spec(["seq"], ["re"]),
  error: spec(["code", "message"], ["seq", "re", "field", "retry_after_ms"]),
  notice: spec(["seq", "text"]),
  ping: spec(["ts"]),
  pong: spec(["ts"], ["re"]),
  joined: spec(
    ["seq", "room", "tick_rate", "tick", "input_delay", "late_policy", "max_players", "members"],
    ["sim", "state", "re"],
  ),
  member_joined: spec(["seq", "room", "player_id", "tick"]),
  member_left: spec(["seq", "room", "player_id", "tick"]),
  frame: spec(["seq", "room", "tick", "inputs"]),
  frames: spec(["seq", "room", "frames"], ["re"]),
  desync: spec(["seq", "room", "tick", "digests"], ["server"]),
  chat: spec(["seq", "room", "player_id", "text"], ["re"]),
});

/** `join.create` (gameproto.rooms.RoomCreate): every option is optional. */
export const ROOM_CREATE_FIELDS = Object.freeze([
  "tick_rate",
  "max_players",
  "input_delay",
  "late_policy",
  "sim",
]);

/** A message the SDK refuses to send, or a server frame it cannot read. */
export class ProtocolError extends Error {
  constructor(code, message, field = undefined) {
    super(field ? `${code} (${field}): ${message}` : `${code}: ${message}`);
    this.name = "ProtocolError";
    this.code = code;
    this.field = field;
  }
}

// --- checks (the server's schema checks, so a bad message fails here, not on the wire) ---

const isInt = (v) => Number.isSafeInteger(v) || typeof v === "bigint";

function invalid(field, message) {
  throw new ProtocolError(ErrorCode.INVALID, message, field);
}

function checkIntIn(value, field, min, max) {
  if (!isInt(value)) invalid(field, `${field} must be an integer`);
  const big = BigInt(value);
  if (big < BigInt(min) || big > BigInt(max)) {
    invalid(field, `${field} must be in ${min}..${max}, got ${value}`);
  }
}

function checkRoom(room, field = "room") {
  if (typeof room !== "string" || !ROOM_ID_PATTERN.test(room)) {
    invalid(field, "a room id is 1-64 characters of A-Z a-z 0-9 _ . : -");
  }
}

function checkNumber(value, field) {
  if (typeof value !== "number" || !Number.isFinite(value)) {
    invalid(field, `${field} must be a finite number`);
  }
}

function checkCreate(create) {
  if (create === undefined || create === null) return;
  if (typeof create !== "object" || Array.isArray(create)) invalid("create", "must be an object");
  const known = new Set(ROOM_CREATE_FIELDS);
  for (const key of Object.keys(create)) {
    if (!known.has(key)) invalid(`create.${key}`, "unknown room option");
  }
  if (create.tick_rate !== undefined) checkIntIn(create.tick_rate, "create.tick_rate", 1, MAX_TICK_RATE);
  if (create.max_players !== undefined) {
    checkIntIn(create.max_players, "create.max_players", 1, MAX_PLAYERS_LIMIT);
  }
  if (create.input_delay !== undefined) {
    checkIntIn(create.input_delay, "create.input_delay", 0, MAX_INPUT_DELAY);
  }
  if (create.late_policy !== undefined && !LATE_POLICIES.includes(create.late_policy)) {
    invalid("create.late_policy", `must be one of ${LATE_POLICIES.join(", ")}`);
  }
  if (create.sim !== undefined) {
    const ok = typeof create.sim === "string" && create.sim.length >= 1;
    if (!ok || create.sim.length > MAX_SIM_NAME) invalid("create.sim", "1-64 characters");
  }
}

const CHECKS = {
  ack: (m) => checkIntIn(m.seq, "seq", 0, INT64_MAX),
  ping: (m) => checkNumber(m.ts, "ts"),
  pong: (m) => checkNumber(m.ts, "ts"),
  move: (m) => {
    checkNumber(m.x, "x");
    checkNumber(m.y, "y");
  },
  state: () => {},
  join: (m) => {
    checkRoom(m.room);
    checkCreate(m.create);
  },
  leave: (m) => checkRoom(m.room),
  input: (m) => {
    checkRoom(m.room);
    checkIntIn(m.tick, "tick", 0, INT64_MAX);
    checkIntIn(m.keys, "keys", 0, KEYS_MAX);
  },
  sync: (m) => {
    checkRoom(m.room);
    checkIntIn(m.from_tick, "from_tick", 0, INT64_MAX);
  },
  hash: (m) => {
    checkRoom(m.room);
    checkIntIn(m.tick, "tick", 0, INT64_MAX);
    checkIntIn(m.h, "h", 0, DIGEST_MAX);
  },
  chat: (m) => {
    checkRoom(m.room);
    const chars = typeof m.text === "string" ? [...m.text].length : 0; // code points
    if (chars < 1 || chars > MAX_CHAT_CHARS) invalid("text", "1-256 characters");
  },
};

/** Throws ProtocolError (`invalid`, with `field`) unless `msg` is a sendable client message. */
export function checkClientMessage(msg) {
  if (msg === null || typeof msg !== "object") invalid("type", "a message is an object");
  const check = CHECKS[msg.type];
  if (check === undefined) invalid("type", `unknown client message type ${JSON.stringify(msg.type)}`);
  if (msg.id !== undefined) {
    const okId =
      Number.isSafeInteger(msg.id) || (typeof msg.id === "string" && msg.id.length <= MAX_ID_LENGTH);
    if (!okId) invalid("id", "an id is an integer or a string of at most 64 characters");
  }
  if (msg.ack !== undefined) checkIntIn(msg.ack, "ack", 0, INT64_MAX);
  check(msg);
  return msg;
}

// --- builders ----------------------------------------------------------------------------

function build(type, fields) {
  const msg = { type };
  for (const [key, value] of Object.entries(fields)) {
    if (value !== undefined && value !== null) msg[key] = value; // omitted, never null
  }
  return checkClientMessage(msg);
}

export const ack = (seq) => build("ack", { seq });
export const ping = (ts) => build("ping", { ts });
export const pong = (ts) => build("pong", { ts });
export const move = (x, y) => build("move", { x, y });
export const stateReq = () => build("state", {});
export const join = (room, create = undefined) => build("join", { room, create });
export const leave = (room) => build("leave", { room });
export const input = (room, tick, keys) => build("input", { room, tick, keys });
export const sync = (room, fromTick) => build("sync", { room, from_tick: fromTick });
export const hash = (room, tick, h) => build("hash", { room, tick, h: BigInt(h) });
export const chat = (room, text) => build("chat", { room, text });

// --- JSON with exact 64-bit integers --------------------------------------------------------

// Any integer beyond Number.MAX_SAFE_INTEGER has at least 16 digits: frames without such
// a run take the plain JSON.parse path.
const LONG_DIGIT_RUN = /\d{16}/;
const NUMBER_TOKEN = /-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
// Placeholders for big integers while JSON.parse runs; the random part keeps a string the
// server sent from ever being mistaken for one.
const MARK = `\u2063bigint:${Math.random().toString(36).slice(2)}:`;
const MARKED = new RegExp(`"${MARK}(-?\\d+)"`, "g");
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

function quoteBigIntegers(text) {
  let out = "";
  let copied = 0;
  let i = 0;
  while (i < text.length) {
    const ch = text.charCodeAt(i);
    if (ch === 0x22) {
      // a string: skip to its closing quote, honouring escapes
      i += 1;
      while (i < text.length) {
        const c = text.charCodeAt(i);
        if (c === 0x5c) i += 2;
        else if (c === 0x22) break;
        else i += 1;
      }
      i += 1;
    } else if (ch === 0x2d || (ch >= 0x30 && ch <= 0x39)) {
      NUMBER_TOKEN.lastIndex = i;
      const match = NUMBER_TOKEN.exec(text);
      if (match === null) return text; // not JSON: let JSON.parse report it
      const token = match[0];
      if (/^-?\d+$/.test(token)) {
        const value = BigInt(token);
        if (value > MAX_SAFE || value < -MAX_SAFE) {
          out += `${text.slice(copied, i)}"${MARK}${token}"`;
          copied = i + token.length;
        }
      }
      i += token.length;
    } else {
      i += 1;
    }
  }
  return out + text.slice(copied);
}

function reviveBigIntegers(_key, value) {
  return typeof value === "string" && value.startsWith(MARK) ? BigInt(value.slice(MARK.length)) : value;
}

/** JSON.parse, except that integers beyond 2^53 become BigInt instead of being rounded. */
export function parseJson(text) {
  if (!LONG_DIGIT_RUN.test(text)) return JSON.parse(text);
  return JSON.parse(quoteBigIntegers(text), reviveBigIntegers);
}

/** JSON.stringify, except that BigInt values are written as JSON integers. */
export function stringifyJson(value) {
  let sawBigInt = false;
  const text = JSON.stringify(value, (_key, v) => {
    if (typeof v !== "bigint") return v;
    sawBigInt = true;
    return `${MARK}${v.toString()}`;
  });
  return sawBigInt ? text.replace(MARKED, "$1") : text;
}

/** The text frame for a client message (checked first). */
export function encode(msg) {
  return stringifyJson(checkClientMessage(msg));
}

/**
 * A server frame as a message object. Known types are checked for their required fields;
 * unknown types are returned as they are (the application may know them). Throws
 * ProtocolError (`bad_message`) with `seq` set when the frame had a usable one, so the
 * reliable stream can still count it.
 */
export function decodeServer(text) {
  let msg;
  try {
    msg = typeof text === "string" ? parseJson(text) : undefined;
  } catch {
    msg = undefined;
  }
  if (msg === null || typeof msg !== "object" || Array.isArray(msg) || typeof msg.type !== "string") {
    throw new ProtocolError(ErrorCode.BAD_MESSAGE, "not a JSON object with a string type");
  }
  if (msg.seq !== undefined && !(Number.isSafeInteger(msg.seq) && msg.seq >= 0)) {
    throw new ProtocolError(ErrorCode.BAD_MESSAGE, "seq must be a non-negative integer");
  }
  const known = SERVER_MESSAGES[msg.type];
  if (known !== undefined) {
    const missing = known.required.filter((name) => msg[name] === undefined || msg[name] === null);
    if (missing.length > 0) {
      const error = new ProtocolError(ErrorCode.BAD_MESSAGE, `${msg.type} without ${missing.join(", ")}`);
      if (Number.isSafeInteger(msg.seq)) error.seq = msg.seq;
      throw error;
    }
    if (msg.type === "desync") normalizeDesync(msg);
  }
  return msg;
}

// Digests are BigInt in this SDK, whatever their size on the wire.
function normalizeDesync(msg) {
  try {
    const digests = {};
    for (const [player, h] of Object.entries(msg.digests)) digests[player] = BigInt(h);
    msg.digests = digests;
    if (msg.server !== undefined) msg.server = BigInt(msg.server);
  } catch {
    const error = new ProtocolError(ErrorCode.BAD_MESSAGE, "desync digests must be integers");
    if (Number.isSafeInteger(msg.seq)) error.seq = msg.seq;
    throw error;
  }
}

/** True for the server message types this SDK knows (others are passed on as they are). */
export function isKnownServerType(type) {
  return Object.hasOwn(SERVER_MESSAGES, type);
}

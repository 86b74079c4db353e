// Pure bookkeeping of one client session, kept apart from I/O so it is tested without a
// server: a port of the Python SDK's `gameclient/_stream.py`, `_backoff.py`, `_errors.py`.
//
// - InboundStream: exactly-once delivery of seq'd server messages, cumulative acks.
// - HeartbeatMonitor: when the client pings, and when silence means the connection is dead.
// - PendingRequests: in-flight requests, matched to replies by `re`.
// - Backoff, shouldReconnect, buildUrl: the reconnect policy and the connect URL.

import { CloseCode } from "./proto.js";

// Ack at once (instead of waiting for the ack delay) when this many messages are unacked,
// so a burst never gets near the server's outbox limit (GAME_OUTBOX_MAX, 1024).
export const ACK_BATCH_MAX = 256;
// Lazy acks (docs/PROTOCOL.md): an ack rides on the next message the client sends; without
// one, a separate ack frame goes this long after the first unacked message.
export const ACK_DELAY_MS = 250;
// The contract's GAME_HEARTBEAT_MISSES: this many silent intervals mean dead.
export const DEFAULT_HEARTBEAT_MISSES = 3;
// Timers jitter; allow this fraction of an interval.
export const HEARTBEAT_SLACK = 0.1;
// Closes after which reconnecting would be wrong: the client ended the session (1000), or
// an operator kicked the player (4000), or
// another connection of this player took it over (4409: fighting back would make two
// clients replace each other forever).
export const FINAL_CLOSE_CODES = Object.freeze([CloseCode.NORMAL, CloseCode.KICKED, CloseCode.REPLACED]);

// --- errors -------------------------------------------------------------------------------

/** The server answered a request with `error {code, message, ...}` (or a client-side failure). */
export class GameError extends Error {
  constructor(code, message, { retryAfterMs, field } = {}) {
    super(`${code}: ${message}`);
    this.name = "GameError";
    this.code = code;
    this.detail = message;
    this.retryAfterMs = retryAfterMs;
    this.field = field;
  }

  static from(msg) {
    return new GameError(msg.code, msg.message, { retryAfterMs: msg.retry_after_ms, field: msg.field });
  }
}

/** The client is closed (by close(), a final close code, or it stopped reconnecting). */
export class ClientClosed extends GameError {
  constructor(message, closeCode = null) {
    super("closed", message);
    this.name = "ClientClosed";
    this.closeCode = closeCode;
  }
}

/** No reply to a request within its timeout (the outcome is unknown). */
export class RequestTimeout extends GameError {
  constructor(message = "no reply in time") {
    super("timeout", message);
    this.name = "RequestTimeout";
  }
}

/** A reconnect could not resume the session, so replies to earlier requests are gone. */
export class SessionLost extends GameError {
  constructor() {
    super("session_lost", "the session was not resumed; request outcome unknown");
    this.name = "SessionLost";
  }
}

/** The node's auth API refused (`POST /api/auth/...`); `status` is the HTTP status. */
export class AuthError extends GameError {
  constructor(status, code, message, { retryAfterMs, field } = {}) {
    super(code, message, { retryAfterMs, field });
    this.name = "AuthError";
    this.status = status;
  }
}

/** The server skipped a seq: drop the connection and resume from the last one seen. */
export class SequenceGap extends Error {
  constructor(message) {
    super(message);
    this.name = "SequenceGap";
  }
}

// --- the reliable stream ------------------------------------------------------------------

/** Dedupe and ack state of the reliable server -> client stream of one session. */
export class InboundStream {
  constructor() {
    this.delivered = 0; // highest seq handed to the app; all lower ones were too
    this.acked = 0; // highest seq acked on the current connection
  }

  /** True if `seq` is new (deliver it); false for a duplicate. Throws SequenceGap on a skip. */
  accept(seq) {
    if (seq <= this.delivered) return false;
    if (seq !== this.delivered + 1) throw new SequenceGap(`expected seq ${this.delivered + 1}, got ${seq}`);
    this.delivered = seq;
    return true;
  }

  get unacked() {
    return this.delivered - this.acked;
  }

  ackUrgent() {
    return this.unacked >= ACK_BATCH_MAX;
  }

  /** The cumulative seq to ack now, or null if everything delivered is acked. */
  takeAck() {
    if (this.delivered <= this.acked) return null;
    this.acked = this.delivered;
    return this.delivered;
  }

  /** A resumed connection: ack again what we have, so the server trims its outbox. */
  onResumed() {
    this.acked = 0;
  }

  /** A new session: its seqs start again at 1. */
  reset() {
    this.delivered = 0;
    this.acked = 0;
  }
}

/**
 * Liveness of the server as the client sees it (docs/PROTOCOL.md, Heartbeat). Any server
 * frame proves it alive; the server pings only silent clients, so a client that keeps
 * sending hears replies instead. When nothing arrived for a heartbeat interval the client
 * pings (once per silent interval); when nothing arrived for `misses` intervals (plus
 * slack) the connection is dead. Times in seconds.
 */
export class HeartbeatMonitor {
  constructor(heartbeatS, now, { misses = DEFAULT_HEARTBEAT_MISSES } = {}) {
    this.heartbeatS = heartbeatS;
    this.windowS = heartbeatS * (misses + HEARTBEAT_SLACK);
    this.lastSeen = now; // the welcome starts the clock
    this.lastPingSent = now;
  }

  onFrame(now) {
    this.lastSeen = now;
  }

  get deadline() {
    return this.lastSeen + this.windowS;
  }

  isDead(now) {
    return now >= this.deadline;
  }

  /** A heartbeat interval after the later of the last server frame and our last ping. */
  get pingAt() {
    return Math.max(this.lastSeen, this.lastPingSent) + this.heartbeatS;
  }

  pingDue(now) {
    return now >= this.pingAt;
  }

  onPingSent(now) {
    this.lastPingSent = now;
  }
}

/** In-flight requests by id; each is answered exactly once by a message with `re`. */
export class PendingRequests {
  constructor() {
    this._next = 1;
    this._waiting = new Map(); // id -> {resolve, reject}
    // Ids actually written to a connection: only these are lost with a session; the
    // others still wait to be sent and go out on the new one.
    this._sent = new Set();
  }

  get size() {
    return this._waiting.size;
  }

  newId() {
    const id = this._next;
    this._next += 1;
    return id;
  }

  /** A promise of the reply to request `id`. */
  add(id) {
    if (this._waiting.has(id)) throw new RangeError(`request id ${JSON.stringify(id)} is already in flight`);
    return new Promise((resolve, reject) => this._waiting.set(id, { resolve, reject }));
  }

  markSent(id) {
    if (this._waiting.has(id)) this._sent.add(id);
  }

  discard(id) {
    this._waiting.delete(id);
    this._sent.delete(id);
  }

  /** Complete request `re` with `msg` (an `error` rejects); false if nobody waits for it. */
  resolve(re, msg) {
    const waiter = this._waiting.get(re);
    if (waiter === undefined) return false;
    this.discard(re);
    if (msg.type === "error") waiter.reject(GameError.from(msg));
    else waiter.resolve(msg);
    return true;
  }

  failAll(error) {
    const waiting = [...this._waiting.values()];
    this._waiting.clear();
    this._sent.clear();
    for (const waiter of waiting) waiter.reject(error);
  }

  /** Ids of the requests already sent. */
  sentIds() {
    return new Set(this._sent);
  }

  /** Fail these requests if they still wait (their replies were lost). */
  failIds(ids, error) {
    for (const id of ids) {
      const waiter = this._waiting.get(id);
      this.discard(id);
      waiter?.reject(error);
    }
  }

  /** Fail the requests already sent (their session is gone); unsent ones stay. */
  failSent(error) {
    const sent = [...this._sent];
    this._sent.clear();
    for (const id of sent) {
      const waiter = this._waiting.get(id);
      this._waiting.delete(id);
      waiter?.reject(error);
    }
  }
}

// --- reconnecting -------------------------------------------------------------------------

/**
 * Reconnect delays: 1 s, 2 s, 4 s ... capped at 30 s, each drawn from
 * [nominal * (1 - jitter), nominal] so a server restart does not get every client back in
 * the same instant. Seconds, like the Python SDK's `Backoff`.
 */
export class Backoff {
  constructor({ baseS = 1, factor = 2, capS = 30, jitter = 0.25, random = Math.random } = {}) {
    if (baseS < 0 || capS < 0 || factor < 1 || !(jitter >= 0 && jitter <= 1)) {
      throw new RangeError("need baseS >= 0, capS >= 0, factor >= 1, 0 <= jitter <= 1");
    }
    Object.assign(this, { baseS, factor, capS, jitter, _random: random });
    this.attempt = 0;
  }

  /** The un-jittered delay before retry number `attempt` (0-based). */
  nominal(attempt) {
    let delay = this.baseS;
    for (let i = 0; i < attempt; i += 1) {
      delay *= this.factor;
      if (delay >= this.capS) return this.capS;
    }
    return Math.min(delay, this.capS);
  }

  nextDelay() {
    const nominal = this.nominal(this.attempt);
    this.attempt += 1;
    return nominal * (1 - this.jitter * this._random());
  }

  reset() {
    this.attempt = 0;
  }
}

export function shouldReconnect(closeCode) {
  return !FINAL_CLOSE_CODES.includes(closeCode);
}

/** `baseUrl` with the ticket (and the resume parameters) added to its query string. */
export function buildUrl(baseUrl, ticket, { resume = null, lastSeq = 0 } = {}) {
  const url = new URL(baseUrl);
  url.searchParams.set("ticket", ticket);
  if (resume !== null) {
    url.searchParams.set("resume", resume);
    url.searchParams.set("last_seq", String(lastSeq));
  }
  return url.toString();
}

// GameClient: one player's connection to `/ws/game/`, kept alive and resumed across drops.
// A port of the Python SDK's `gameclient/_client.py` onto the WebSocket API of browsers
// (and of Node: Node 22+ has it built in, Node 20 with `--experimental-websocket`, or pass
// `{ WebSocket }` from a package). The bookkeeping lives in stream.js; this module wires
// it to a socket and to timers. The rules (docs/PROTOCOL.md):
//
// - Every connect gets a fresh ticket (a TicketSource, or any async function).
// - Acks are lazy: the cumulative ack rides on the next message the application sends;
//   without one a separate `ack` goes ACK_DELAY_MS after the first unacked message, and at
//   once when ACK_BATCH_MAX are unacked.
// - Any server frame proves the server alive. Silent for `heartbeat_s`: the client pings;
//   silent for 3 x `heartbeat_s` (+10 %): the connection is dead, and is dropped. Server
//   pings are answered with `pong`.
// - A dropped connection (any close but 1000 and 4409) reconnects with backoff and resumes
//   (`resume`, `last_seq`); messages are delivered exactly once and in order (dedupe by
//   seq), and a skipped seq drops the connection to resume from the last one seen.

import {
  CloseCode,
  JSON_SUBPROTOCOL,
  ProtocolError,
  checkClientMessage,
  decodeServer,
  encode,
  ping as pingMessage,
  pong as pongMessage,
} from "./proto.js";
import {
  ACK_DELAY_MS,
  Backoff,
  ClientClosed,
  DEFAULT_HEARTBEAT_MISSES,
  HeartbeatMonitor,
  InboundStream,
  PendingRequests,
  RequestTimeout,
  SequenceGap,
  SessionLost,
  buildUrl,
  shouldReconnect,
} from "./stream.js";

export const DEFAULT_REQUEST_TIMEOUT_MS = 10_000;
// TCP + TLS + HTTP upgrade + the welcome the server sends right after accepting.
export const OPEN_TIMEOUT_MS = 10_000;
// Closing waits this long for the server's close frame; a dead peer must not stall us.
export const CLOSE_TIMEOUT_MS = 2_000;
// Only a connection that lived this long resets the backoff, so a server that accepts and
// drops us at once is still retried with growing delays.
export const STABLE_CONNECTION_S = 5;
// Our close code when we drop a connection ourselves but keep the session (a skipped seq,
// a bad welcome). Browsers only let a page close with 1000 or 3000-4999, and 1000 would
// end the session. (Not 4000: from the server that means an operator kicked us, which must
// not be mistaken for our own drop.)
export const CLOSE_RESUME = 4001;
const OPEN = 1; // WebSocket.OPEN

const defaultClock = () => performance.now() / 1000;

/**
 * `new GameClient(url, tickets, options)`; `await client.connect()`; then read pushes with
 * `for await (const msg of client)` (or `await client.recv()`), `await client.send(msg)`,
 * `await client.request(msg)` (the reply with `re`; an `error` rejects with GameError).
 *
 * `tickets`: a TicketSource or an async function returning a fresh ticket.
 * options: `WebSocket` (constructor), `backoff` (Backoff), `maxReconnectAttempts` (null:
 * never give up), `heartbeatMisses`, `ackDelayMs`, `clock` (seconds), `logger` (console).
 *
 * Events (it is an EventTarget): `status` with `detail = {status, closeCode}`, where status
 * is "connecting", "open", "reconnecting" or "closed".
 */
export class GameClient extends EventTarget {
  constructor(
    url,
    tickets,
    {
      WebSocket: WebSocketImpl = globalThis.WebSocket,
      backoff = new Backoff(),
      maxReconnectAttempts = null,
      heartbeatMisses = DEFAULT_HEARTBEAT_MISSES,
      ackDelayMs = ACK_DELAY_MS,
      clock = defaultClock,
      logger = console,
    } = {},
  ) {
    super();
    if (typeof WebSocketImpl !== "function") {
      throw new TypeError(
        "no WebSocket: pass { WebSocket } (Node 20: run with --experimental-websocket, or use a package)",
      );
    }
    this.url = url;
    this._tickets = typeof tickets === "function" ? tickets : () => tickets.ticket();
    Object.assign(this, {
      _WebSocket: WebSocketImpl,
      _backoff: backoff,
      _maxReconnectAttempts: maxReconnectAttempts,
      _heartbeatMisses: heartbeatMisses,
      _ackDelayMs: ackDelayMs,
      _clock: clock,
      _log: logger,
    });
    this._stream = new InboundStream();
    this._pending = new PendingRequests();
    this._inbox = [];
    this._receivers = [];
    this._ws = null; // the welcomed, open connection
    this._opening = null; // a connection being set up
    this._waiters = []; // send() calls waiting for a connection
    this._heartbeat = null;
    this._ackTimer = null;
    this._watchdogTimer = null;
    this._sleep = null; // {timer, resolve} of the backoff wait
    this._reconnecting = null; // the reconnect loop (owned by this client; close() awaits it)
    this._connectedAt = 0;
    this._started = false;
    this._closing = false;
    this._ended = false;
    this.welcome = null;
    // After a `restored` resume: the welcome's last_seq and the requests sent before it.
    this._orphans = null;
    this.sessionId = null;
    this.closeCode = null; // of the last connection that ended
    this.status = "idle";
  }

  // --- public API ---------------------------------------------------------------------

  get connected() {
    return this._ws !== null;
  }

  /** Highest seq delivered to the application in the current session. */
  get lastSeq() {
    return this._stream.delivered;
  }

  /** Open the first connection (errors reject), then keep it alive in the background. */
  async connect() {
    if (this._started || this._closing) throw new Error("connect() may be called once");
    this._started = true;
    this._setStatus("connecting");
    try {
      return await this._open();
    } catch (error) {
      this._finish(this.closeCode, "the first connect failed");
      throw error;
    }
  }

  /** Send without waiting for a reply, once connected (waits through reconnects). */
  async send(msg) {
    checkClientMessage(msg); // a bad message fails here, on every connection alike
    let dead = null;
    for (;;) {
      const ws = await this._connection(dead);
      if (ws.readyState === OPEN) {
        this._write(ws, msg);
        return;
      }
      dead = ws; // closing under us: send on the next connection
    }
  }

  /** Send `msg` with an `id`; the reply carrying `re` === that id. */
  async request(msg, { timeoutMs = DEFAULT_REQUEST_TIMEOUT_MS } = {}) {
    const id = msg.id ?? this._pending.newId();
    const reply = this._pending.add(id);
    reply.catch(() => {}); // a timeout may win the race; never an unhandled rejection
    let timer;
    const timeout = new Promise((_, reject) => {
      timer = setTimeout(() => reject(new RequestTimeout(`no reply to ${msg.type} in ${timeoutMs} ms`)), timeoutMs);
    });
    try {
      await Promise.race([this.send({ ...msg, id }), timeout]);
      this._pending.markSent(id);
      return await Promise.race([reply, timeout]);
    } finally {
      clearTimeout(timer);
      this._pending.discard(id);
    }
  }

  /** Round-trip time to the node in milliseconds (a `ping` request). */
  async ping({ timeoutMs = DEFAULT_REQUEST_TIMEOUT_MS } = {}) {
    const started = this._clock();
    await this.request(pingMessage(Date.now()), { timeoutMs });
    return (this._clock() - started) * 1000;
  }

  /** The next server push (and each `welcome`); rejects with ClientClosed once closed. */
  recv() {
    if (this._inbox.length > 0) return Promise.resolve(this._inbox.shift());
    if (this._ended) return Promise.reject(new ClientClosed("client closed", this.closeCode));
    return new Promise((resolve, reject) => this._receivers.push({ resolve, reject }));
  }

  async *[Symbol.asyncIterator]() {
    for (;;) {
      let msg;
      try {
        msg = await this.recv();
      } catch (error) {
        if (error instanceof ClientClosed) return;
        throw error;
      }
      yield msg;
    }
  }

  /** Close with 1000, which ends the session on the server (not resumable). */
  async close() {
    const first = !this._closing;
    this._closing = true;
    const ws = this._ws;
    const opening = this._opening;
    this._finish(CloseCode.NORMAL, "client closed");
    const waits = [];
    if (first && ws !== null) waits.push(closeSocket(ws, CloseCode.NORMAL));
    // A connection being set up fails its connect on this close, which ends the loop.
    if (first && opening !== null && opening.readyState <= OPEN) opening.close(CloseCode.NORMAL);
    if (this._reconnecting !== null) waits.push(this._reconnecting);
    await Promise.all(waits);
  }

  // --- connection lifecycle -----------------------------------------------------------

  async _open() {
    const ticket = await this._tickets();
    if (this._closing) throw new ClientClosed("client closed", this.closeCode);
    const resume = this.sessionId === null ? {} : { resume: this.sessionId, lastSeq: this._stream.delivered };
    const ws = new this._WebSocket(buildUrl(this.url, ticket, resume), [JSON_SUBPROTOCOL]);
    this._opening = ws;
    try {
      return await new Promise((resolve, reject) => {
        const fail = (error) => {
          clearTimeout(timer);
          ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
          if (ws.readyState <= OPEN) ws.close(this._closing ? CloseCode.NORMAL : CLOSE_RESUME);
          reject(error);
        };
        const timer = setTimeout(() => fail(new Error("no welcome in time")), OPEN_TIMEOUT_MS);
        ws.onerror = () => {}; // a close event follows with the code
        ws.onclose = (event) => fail(new ConnectFailed(event.code, event.reason));
        ws.onopen = () => {
          if (ws.protocol && ws.protocol !== JSON_SUBPROTOCOL) {
            fail(new ProtocolError("bad_message", `server chose subprotocol ${ws.protocol}`));
          }
        };
        ws.onmessage = (event) => {
          let msg;
          try {
            msg = decodeServer(event.data);
          } catch (error) {
            fail(error);
            return;
          }
          if (msg.type !== "welcome") {
            fail(new ProtocolError("bad_message", `expected welcome, got ${msg.type}`));
          } else if (this._closing) {
            fail(new ClientClosed("client closed", this.closeCode));
          } else {
            // Bound right here, so no frame after the welcome can slip past the handlers.
            clearTimeout(timer);
            this._onWelcome(msg);
            this._bind(ws, msg);
            resolve(msg);
          }
        };
      });
    } finally {
      if (this._opening === ws) this._opening = null;
    }
  }

  _settleOrphans() {
    const orphans = this._orphans;
    if (orphans !== null && this._stream.delivered >= orphans.lastSeq) {
      this._orphans = null;
      this._pending.failIds(orphans.ids, new SessionLost());
    }
  }

  _onWelcome(msg) {
    if (msg.resumed) {
      this._stream.onResumed();
      if (msg.restored) {
        // Restored on another node: replies not replayed up to last_seq are lost
        // (docs/PROTOCOL.md, the loss window); fail those requests once it is reached.
        this._orphans = { lastSeq: msg.last_seq, ids: this._pending.sentIds() };
        this._settleOrphans();
      }
    } else {
      // Replies to requests sent on the old session will never come.
      if (this.sessionId !== null) this._pending.failSent(new SessionLost());
      this._stream.reset();
    }
    this.sessionId = msg.session_id;
    this.welcome = msg;
    this._push(msg);
  }

  _bind(ws, welcome) {
    this._ws = ws;
    this._connectedAt = this._clock();
    this._heartbeat = new HeartbeatMonitor(welcome.heartbeat_s, this._connectedAt, {
      misses: this._heartbeatMisses,
    });
    ws.onopen = ws.onerror = null;
    ws.onmessage = (event) => this._onFrame(ws, event.data);
    ws.onclose = (event) => {
      if (ws === this._ws) this._connectionEnded(event.code);
    };
    this._armWatchdog();
    if (this._stream.unacked > 0) this._ackDue(); // a resume: ack again what we have
    this._setStatus("open");
    this._wake();
  }

  _connectionEnded(code) {
    this._ws = null;
    this._clearTimers();
    this.closeCode = code;
    this._wake();
    if (this._closing || !shouldReconnect(code)) {
      this._finish(code, code === CloseCode.REPLACED ? "replaced by a newer connection" : "connection closed");
      return;
    }
    if (this._clock() - this._connectedAt >= STABLE_CONNECTION_S) this._backoff.reset();
    this._setStatus("reconnecting", code);
    const loop = this._reconnect().finally(() => {
      if (this._reconnecting === loop) this._reconnecting = null;
    });
    this._reconnecting = loop;
  }

  /** Drop a connection ourselves (the session stays resumable) and reconnect. */
  _drop(ws, code, why) {
    if (ws !== this._ws) return;
    this._log.info(`gameclient: ${why}; reconnecting`);
    ws.onmessage = ws.onclose = null;
    // Do not wait for the close handshake: a dead peer would stall us for a long time.
    if (ws.readyState <= OPEN) ws.close(code);
    this._connectionEnded(code);
  }

  async _reconnect() {
    let failures = 0;
    while (!this._closing) {
      await this._pause(this._backoff.nextDelay() * 1000);
      if (this._closing) return;
      try {
        await this._open();
        return;
      } catch (error) {
        if (this._closing) return;
        failures += 1;
        this._log.info(`gameclient: reconnect attempt failed: ${error.code ?? error.name}`);
        const limit = this._maxReconnectAttempts;
        if (limit !== null && failures >= limit) {
          this._finish(this.closeCode, "gave up reconnecting");
          return;
        }
      }
    }
  }

  // --- per-connection work ------------------------------------------------------------

  _onFrame(ws, data) {
    if (ws !== this._ws) return;
    this._heartbeat.onFrame(this._clock()); // any frame proves the server alive
    let msg;
    try {
      msg = decodeServer(data);
    } catch (error) {
      // Keep the reliable stream counting even when we cannot read a message.
      if (error.seq !== undefined && !this._accept(ws, error.seq)) return;
      this._log.warn(`gameclient: dropping an undecodable server message: ${error.message}`);
      return;
    }
    if (msg.type === "ping") {
      this._write(ws, pongMessage(msg.ts));
      return;
    }
    if (msg.type === "welcome") {
      this._log.warn("gameclient: ignoring a second welcome on one connection");
      return;
    }
    if (msg.seq !== undefined && !this._accept(ws, msg.seq)) return;
    const resolved = msg.re !== undefined && this._pending.resolve(msg.re, msg);
    if (this._orphans !== null) this._settleOrphans();
    if (resolved) return;
    if (msg.type === "pong") return; // the answer to our own heartbeat ping
    if (msg.type === "notice") {
      // An operator's system message: an event for the page, and in the inbox like any other.
      this.dispatchEvent(new CustomEvent("notice", { detail: { seq: msg.seq, text: msg.text } }));
    }
    this._push(msg);
  }

  /** True if `seq` is new; a duplicate is dropped, a skipped seq drops the connection. */
  _accept(ws, seq) {
    try {
      if (!this._stream.accept(seq)) return false;
    } catch (error) {
      if (!(error instanceof SequenceGap)) throw error;
      this._drop(ws, CLOSE_RESUME, `server skipped a seq (${error.message}); resuming from ${this._stream.delivered}`);
      return false;
    }
    this._ackDue();
    return true;
  }

  _ackDue() {
    if (this._stream.ackUrgent()) {
      this._flushAck();
    } else if (this._ackTimer === null) {
      this._ackTimer = setTimeout(() => this._flushAck(), this._ackDelayMs);
    }
  }

  _flushAck() {
    clearTimeout(this._ackTimer);
    this._ackTimer = null;
    const ws = this._ws;
    if (ws === null || ws.readyState !== OPEN) return; // a resume acks again
    const seq = this._stream.takeAck();
    if (seq !== null) ws.send(encode({ type: "ack", seq }));
  }

  /** Write `msg`, piggybacking the cumulative ack (taken afresh for each connection). */
  _write(ws, msg) {
    let out = msg;
    if (msg.type !== "ack") {
      const seq = this._stream.takeAck();
      if (seq !== null) {
        out = { ...msg, ack: seq };
        clearTimeout(this._ackTimer); // everything delivered is acked now
        this._ackTimer = null;
      }
    }
    ws.send(encode(out));
  }

  _armWatchdog() {
    clearTimeout(this._watchdogTimer);
    const heartbeat = this._heartbeat;
    const wait = Math.min(heartbeat.deadline, heartbeat.pingAt) - this._clock();
    this._watchdogTimer = setTimeout(() => this._watch(), Math.max(0, wait * 1000));
  }

  _watch() {
    const ws = this._ws;
    if (ws === null) return;
    const now = this._clock();
    const heartbeat = this._heartbeat;
    if (heartbeat.isDead(now)) {
      this._drop(ws, CloseCode.HEARTBEAT_TIMEOUT, "nothing from the server within the heartbeat window");
      return;
    }
    if (heartbeat.pingDue(now) && ws.readyState === OPEN) {
      heartbeat.onPingSent(now);
      this._write(ws, pingMessage(Date.now()));
    }
    this._armWatchdog(); // both times move as frames arrive and pings go out
  }

  // --- helpers ------------------------------------------------------------------------

  /** The open connection (not `otherThan`), waiting through reconnects. */
  async _connection(otherThan) {
    for (;;) {
      if (this._closing) throw new ClientClosed("client closed", this.closeCode);
      const ws = this._ws;
      if (ws !== null && ws !== otherThan) return ws;
      await new Promise((resolve) => this._waiters.push(resolve));
    }
  }

  /** Wake every send() waiting for a connection (they look again). */
  _wake() {
    const waiters = this._waiters;
    this._waiters = [];
    for (const resolve of waiters) resolve();
  }

  _pause(ms) {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this._sleep = null;
        resolve();
      }, ms);
      this._sleep = { timer, resolve };
    });
  }

  _clearTimers() {
    clearTimeout(this._ackTimer);
    clearTimeout(this._watchdogTimer);
    this._ackTimer = this._watchdogTimer = null;
  }

  _push(msg) {
    const receiver = this._receivers.shift();
    if (receiver !== undefined) receiver.resolve(msg);
    else this._inbox.push(msg);
  }

  _setStatus(status, closeCode = this.closeCode) {
    this.status = status;
    this.dispatchEvent(new CustomEvent("status", { detail: { status, closeCode } }));
  }

  _finish(code, reason) {
    if (this._ended) return;
    this._ended = true;
    this._closing = true;
    const ws = this._ws;
    this._ws = null;
    if (ws !== null) ws.onmessage = ws.onclose = null;
    this._clearTimers();
    if (this._sleep !== null) {
      clearTimeout(this._sleep.timer);
      this._sleep.resolve();
      this._sleep = null;
    }
    this.closeCode = code;
    const error = new ClientClosed(reason, code);
    this._pending.failAll(error);
    for (const receiver of this._receivers.splice(0)) receiver.reject(error);
    this._wake();
    this._setStatus("closed", code);
  }
}

/** A connect that ended before the welcome (refused upgrade, network error, 1011...). */
export class ConnectFailed extends Error {
  constructor(code, reason) {
    super(`connection closed before the welcome (code ${code}${reason ? `: ${reason}` : ""})`);
    this.name = "ConnectFailed";
    this.code = code;
  }
}

/** Close `ws` with `code`; resolves on its close event or after CLOSE_TIMEOUT_MS. */
function closeSocket(ws, code) {
  return new Promise((resolve) => {
    if (ws.readyState > OPEN) {
      resolve();
      return;
    }
    const timer = setTimeout(resolve, CLOSE_TIMEOUT_MS);
    ws.onmessage = ws.onerror = null;
    ws.onclose = () => {
      clearTimeout(timer);
      resolve();
    };
    ws.close(code);
  });
}

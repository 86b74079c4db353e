// A scripted WebSocket server for the client's unit tests (no sockets, no real time): the
// test accepts connections, sends frames and reads what the client wrote. Pure-logic tests
// only; the client meets the real node in tests/gamebackend/play/test_js_sdk_e2e.py.
import { proto } from "./sdk.mjs";

const flushOnce = () => new Promise((resolve) => setImmediate(resolve));

/** Let every pending promise callback run (timers are mocked; setImmediate is not). */
export async function flush(rounds = 5) {
  for (let i = 0; i < rounds; i += 1) await flushOnce();
}

export class FakeServer {
  constructor() {
    this.sockets = [];
    this._waiting = [];
    const server = this;
    this.WebSocket = class FakeWebSocket {
      constructor(url, protocols) {
        this.url = new URL(url);
        this.protocols = protocols;
        this.readyState = 0;
        this.protocol = "";
        this.sent = [];
        this.closedWith = null;
        server.sockets.push(this);
        for (const resolve of server._waiting.splice(0)) resolve(this);
      }

      send(text) {
        if (this.readyState === 0) throw new Error("InvalidStateError: still connecting");
        if (this.readyState === 1) this.sent.push(proto.parseJson(text));
      }

      close(code) {
        if (this.readyState >= 2) return;
        this.closedWith = code;
        this.readyState = 3;
        queueMicrotask(() => this.onclose?.({ code, reason: "" }));
      }

      // -- the server's side --
      accept() {
        this.readyState = 1;
        this.protocol = "game.v1.json";
        this.onopen?.({});
      }

      deliver(msg) {
        this.onmessage?.({ data: typeof msg === "string" ? msg : proto.stringifyJson(msg) });
      }

      drop(code = 1006) {
        this.readyState = 3;
        this.onclose?.({ code, reason: "" });
      }

      take() {
        return this.sent.splice(0);
      }
    };
  }

  /** The next socket the client opens (or the newest one, if it is not served yet). */
  nextSocket() {
    return new Promise((resolve) => this._waiting.push(resolve));
  }
}

export const welcome = (overrides = {}) => ({
  type: "welcome",
  session_id: "s1",
  player_id: "me",
  node: "n",
  heartbeat_s: 15,
  resumed: false,
  last_seq: 0,
  ...overrides,
});

export const silent = { info() {}, warn() {}, error() {} };

// TicketSource: connect tickets from a node's auth API (docs/PROTOCOL.md, "Getting a
// ticket"), a port of the Python SDK's `gameclient/_auth.py`. The first ticket comes from a
// login (device id, username and password, or guest); every later one (each reconnect)
// from `POST /api/auth/refresh`, which also hands out the next refresh token (the old one
// is spent). If the session is gone (revoked, expired, refused) the source logs in again
// with its credentials; a guest has none, so its AuthError reaches the application.
// Tokens are credentials: this module never logs them.

import { AuthError } from "./stream.js";

export const DEFAULT_HTTP_TIMEOUT_MS = 10_000;
const HTTP_UNAUTHORIZED = 401;

function loginFrom(body) {
  const ok =
    body !== null &&
    typeof body === "object" &&
    typeof body.player_id === "string" &&
    typeof body.ticket === "string" &&
    typeof body.refresh_token === "string";
  if (!ok) throw new AuthError(0, "bad_answer", "the auth API answered without a login");
  return Object.freeze({
    playerId: body.player_id,
    ticket: body.ticket,
    expiresIn: Number(body.expires_in),
    refreshToken: body.refresh_token,
    refreshExpiresIn: Number(body.refresh_expires_in),
  });
}

/**
 * A source of fresh, single-use tickets: pass it to `GameClient` (it calls `ticket()`).
 *
 *   const tickets = TicketSource.device("http://127.0.0.1:8000", deviceId);
 *   const client = new GameClient("ws://127.0.0.1:8000/ws/game/", tickets);
 *
 * `refreshToken` starts from a saved session (`TicketSource.resume`); `onRefreshToken` is
 * called with every new refresh token so the application can keep it (it is spent at the
 * next refresh). Calls are serialised: two reconnects never spend one token twice.
 */
export class TicketSource {
  constructor(
    baseUrl,
    {
      deviceId = null,
      username = null,
      password = null,
      register = false,
      guest = false,
      guestName = null,
      refreshToken = null,
      onRefreshToken = null,
      timeoutMs = DEFAULT_HTTP_TIMEOUT_MS,
      fetch: fetchImpl = globalThis.fetch,
    } = {},
  ) {
    const scheme = new URL(baseUrl).protocol;
    if (scheme !== "http:" && scheme !== "https:") {
      throw new TypeError(`baseUrl must be http(s)://HOST[:PORT], got ${baseUrl}`);
    }
    if ((username === null) !== (password === null)) throw new TypeError("username and password go together");
    if (typeof fetchImpl !== "function") throw new TypeError("no fetch(): pass { fetch }");
    this._base = baseUrl.replace(/\/+$/, "");
    Object.assign(this, {
      _deviceId: deviceId,
      _username: username,
      _password: password,
      _register: register,
      _guest: guest,
      _guestName: guestName,
      _refreshToken: refreshToken,
      _onRefreshToken: onRefreshToken,
      _timeoutMs: timeoutMs,
      // Called as a plain function: a browser's fetch refuses any other `this` than window.
      _fetch: (url, init) => fetchImpl(url, init),
    });
    this._queue = Promise.resolve();
    this.playerId = null;
    this.last = null;
  }

  /** The player of this device id (`POST /api/auth/device`; 10-128 characters). */
  static device(baseUrl, deviceId, options = {}) {
    return new TicketSource(baseUrl, { ...options, deviceId });
  }

  /** An existing account (`POST /api/auth/login`). */
  static login(baseUrl, username, password, options = {}) {
    return new TicketSource(baseUrl, { ...options, username, password });
  }

  /** A new account, registered on the first call, logged into afterwards. */
  static register(baseUrl, username, password, options = {}) {
    return new TicketSource(baseUrl, { ...options, username, password, register: true });
  }

  /** A new guest player; only its refresh token brings it back (keep it). */
  static guest(baseUrl, name = null, options = {}) {
    return new TicketSource(baseUrl, { ...options, guest: true, guestName: name });
  }

  /** The player of a saved refresh token (no credentials to fall back on). */
  static resume(baseUrl, refreshToken, options = {}) {
    return new TicketSource(baseUrl, { ...options, refreshToken });
  }

  /** The current refresh token (it changes with every ticket). */
  get refreshToken() {
    return this._refreshToken;
  }

  /** A fresh, single-use connect ticket. */
  ticket() {
    return this._serialised(() => this._ticket());
  }

  /** End the session on the node (`POST /api/auth/logout`) and forget the token. */
  logout() {
    return this._serialised(async () => {
      if (this._refreshToken !== null) {
        await this._request("logout", { refresh_token: this._refreshToken });
        this._refreshToken = null;
      }
    });
  }

  // --- internals ----------------------------------------------------------------------

  _serialised(work) {
    const run = this._queue.then(work, work);
    this._queue = run.catch(() => {});
    return run;
  }

  async _ticket() {
    let login = null;
    if (this._refreshToken !== null) {
      try {
        login = loginFrom(await this._request("refresh", { refresh_token: this._refreshToken }));
      } catch (error) {
        if (!(error instanceof AuthError) || error.status !== HTTP_UNAUTHORIZED || !this._canLogIn()) throw error;
        this._setRefreshToken(null); // the session is over: log in again
      }
    }
    if (login === null) login = loginFrom(await this._logIn());
    this.playerId = login.playerId;
    this.last = login;
    this._setRefreshToken(login.refreshToken);
    return login.ticket;
  }

  _canLogIn() {
    // A guest cannot log in again as itself: a new guest would be a stranger.
    return this._deviceId !== null || this._username !== null || (this._guest && this.playerId === null);
  }

  async _logIn() {
    if (this._deviceId !== null) return this._request("device", { device_id: this._deviceId });
    if (this._username !== null) {
      const credentials = { username: this._username, password: this._password };
      if (this._register) {
        const body = await this._request("register", credentials);
        this._register = false; // from now on the account exists
        return body;
      }
      return this._request("login", credentials);
    }
    if (this._guest && this.playerId === null) {
      return this._request("guest", this._guestName === null ? {} : { name: this._guestName });
    }
    throw new AuthError(HTTP_UNAUTHORIZED, "bad_refresh_token", "no session and no credentials");
  }

  _setRefreshToken(token) {
    const changed = token !== this._refreshToken;
    this._refreshToken = token;
    if (changed && token !== null && this._onRefreshToken !== null) this._onRefreshToken(token);
  }

  async _request(endpoint, body) {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), this._timeoutMs);
    let response;
    let text;
    try {
      response = await this._fetch(`${this._base}/api/auth/${endpoint}`, {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "application/json" },
        body: JSON.stringify(body),
        credentials: "omit", // the API needs no cookies; a console session must not ride along
        cache: "no-store",
        signal: controller.signal,
      });
      text = await response.text();
    } finally {
      clearTimeout(timer);
    }
    if (!response.ok) throw authError(response, text);
    return text ? JSON.parse(text) : null;
  }
}

function authError(response, text) {
  try {
    const error = JSON.parse(text).error;
    return new AuthError(response.status, String(error.code), String(error.message ?? ""), {
      retryAfterMs: error.retry_after_ms,
      field: error.field,
    });
  } catch {
    return new AuthError(response.status, "http_error", `HTTP ${response.status} ${response.statusText}`);
  }
}

// Room: one room of a GameClient (join/leave, inputs, frames, prediction, hashes). A port of
// the Python SDK's `gameclient/_room.py`:
//
//   const room = new Room(client, "arena", { sim: DEMO, hashEvery: 10 });
//   await room.join({ sim: "demo" });
//   for await (const msg of client) {
//     await room.handle(msg);        // frames, members, chat, desync of this room
//     await room.sendInput(keys);    // aimed at the next tick + the room's input delay
//     const view = room.view();      // what to draw (interpolated or predicted)
//   }
//
// The application reads the client's pushes and hands each to `room.handle`; nothing runs
// in the background. After a new session (`welcome` with `resumed: false`), or a session
// restored on another node (`restored: true`), the room joins again by itself; a gap in the frames (which the reliable stream should never produce) is
// filled with `sync`, or by joining again when the history no longer reaches back.

import { ROLLBACK_AFTER_S, InputBuffer, Lockstep } from "./lockstep.js";
import { ErrorCode, hash, input, join, leave, sync } from "./proto.js";
import { GameError } from "./stream.js";

/** Recent confirmed frames kept for the application (the server's history is 128 too). */
export const RECENT_FRAMES = 128;
/** Report a digest every this many ticks by default (0 turns reporting off). */
export const DEFAULT_HASH_EVERY = 10;
// No frame for this long (or this many tick periods, whichever is longer) means the room is
// gone (e.g. its node died): join again, which re-creates it.
export const STALL_S = 1;
export const STALL_TICKS = 10;

const defaultClock = () => performance.now() / 1000;

function keepRecent(list, item, limit = RECENT_FRAMES) {
  list.push(item);
  if (list.length > limit) list.splice(0, list.length - limit);
}

export class Room {
  constructor(
    client,
    roomId,
    {
      sim = null,
      hashEvery = DEFAULT_HASH_EVERY,
      rollbackAfterS = ROLLBACK_AFTER_S,
      clock = defaultClock,
      logger = console,
    } = {},
  ) {
    this.client = client;
    this.roomId = roomId;
    this.sim = sim;
    this.hashEvery = hashEvery;
    this.rollbackAfterS = rollbackAfterS;
    this._clock = clock;
    this._log = logger;
    this.joined = null;
    this.members = [];
    this.frames = []; // the last RECENT_FRAMES confirmed frames
    this.chat = [];
    this.desyncs = [];
    this.inputs = new InputBuffer();
    this.lockstep = null;
    this.nextTick = 0; // the next frame this room expects
    this.hashesSent = 0;
    this._create = null;
    this._lastFrameAt = 0;
    // The session the room joined on: its own welcome, met later in the app's queue of
    // pushes, is no news (only a new or restored session makes the room join again).
    this._joinedSession = null;
  }

  // -- requests ---------------------------------------------------------------------------

  /** Join (creating the room with `create` options if it does not exist); the `joined`. */
  async join(create = null) {
    this._create = create ?? this._create;
    const reply = await this.client.request(join(this.roomId, this._create ?? undefined));
    this._onJoined(reply);
    return reply;
  }

  async leave() {
    await this.client.request(leave(this.roomId));
    this.joined = null;
    this.lockstep = null;
  }

  /** The tick an input sent now aims at: the next tick plus the room's input delay. */
  inputTick(now = this._clock()) {
    const joined = this.joined;
    if (joined === null) throw new Error("join the room first");
    if (this.lockstep !== null) return this.lockstep.inputTick(now, joined.input_delay);
    return this.nextTick + joined.input_delay;
  }

  /** Send `keys` for the next tick plus the room's input delay; resolves to that tick. */
  async sendInput(keys) {
    const tick = this.inputTick();
    if (this.lockstep !== null) this.lockstep.onInput(tick, keys);
    else this.inputs.put(tick, keys);
    await this.client.send(input(this.roomId, tick, keys));
    return tick;
  }

  async sync(fromTick) {
    return this.client.request(sync(this.roomId, fromTick));
  }

  // -- pushes -----------------------------------------------------------------------------

  /** Take a server push; true when it belonged to this room (or re-joined it). */
  async handle(msg) {
    if (msg.type === "welcome") {
      // A new session left every room; a session restored on another node (`restored`)
      // is in the room on the old node's terms: join again (the state comes with it).
      if (this.joined === null) return false;
      if (msg.restored || (!msg.resumed && msg.session_id !== this._joinedSession)) {
        await this.join();
        return true;
      }
      return false;
    }
    if (msg.room !== this.roomId || this.joined === null) return false;
    switch (msg.type) {
      case "frame":
        await this._onFrame(msg);
        break;
      case "member_joined":
        if (!this.members.includes(msg.player_id)) this.members.push(msg.player_id);
        break;
      case "member_left":
        this.members = this.members.filter((member) => member !== msg.player_id);
        break;
      case "chat":
        keepRecent(this.chat, msg);
        break;
      case "desync":
        this._log.warn(`gameclient: room ${this.roomId}: desync at tick ${msg.tick}`);
        this.desyncs.push(msg);
        break;
      default:
        return false;
    }
    return true;
  }

  /** True when no frame came for a while: the room is gone, `join` it again. */
  stalled(now = this._clock()) {
    const joined = this.joined;
    if (joined === null) return false;
    return now - this._lastFrameAt > Math.max(STALL_S, STALL_TICKS / joined.tick_rate);
  }

  /** What to draw now (see Lockstep.view); needs a simulation. */
  view(now = this._clock()) {
    if (this.lockstep === null) throw new Error("no simulation: join a room with a sim first");
    return this.lockstep.view(now);
  }

  /** The confirmed simulation state (after closing `nextTick - 1`), or null. */
  get state() {
    return this.lockstep === null ? null : this.lockstep.state;
  }

  // -- internals --------------------------------------------------------------------------

  _onJoined(reply) {
    this.joined = reply;
    this._joinedSession = this.client.welcome?.session_id ?? null;
    this.members = [...reply.members];
    this.nextTick = reply.tick;
    this._lastFrameAt = this._clock();
    this.frames = [];
    this.lockstep = null;
    const sim = this.sim;
    if (sim !== null && reply.state !== undefined && reply.state !== null) {
      this.lockstep = new Lockstep(sim, {
        playerId: this.client.welcome?.player_id ?? "",
        tickRate: reply.tick_rate,
        tick: reply.state.tick,
        state: sim.fromData(reply.state.data),
        now: this._clock(),
        rollbackAfterS: this.rollbackAfterS,
        buffer: this.inputs,
      });
    }
  }

  async _onFrame(frame) {
    if (frame.tick < this.nextTick) return; // already applied (e.g. from a sync)
    if (frame.tick > this.nextTick) {
      await this._fillGap(frame.tick);
      if (frame.tick !== this.nextTick) return; // joined again instead: this frame is older
    }
    this._apply(frame.tick, frame.inputs);
    this._lastFrameAt = this._clock();
    keepRecent(this.frames, frame);
    await this._maybeHash(frame.tick);
  }

  _apply(tick, inputs) {
    if (this.lockstep !== null) this.lockstep.confirm(tick, inputs, this._clock());
    this.nextTick = tick + 1;
  }

  async _fillGap(upto) {
    let frames;
    try {
      frames = await this.sync(this.nextTick);
    } catch (error) {
      if (!(error instanceof GameError) || error.code !== ErrorCode.SYNC_TOO_OLD) throw error;
      await this.join();
      return;
    }
    for (const entry of frames.frames) {
      if (entry.tick >= this.nextTick && entry.tick < upto) {
        this._apply(entry.tick, entry.inputs);
        await this._maybeHash(entry.tick);
      }
    }
  }

  async _maybeHash(tick) {
    const lockstep = this.lockstep;
    if (lockstep === null || this.hashEvery <= 0 || (tick + 1) % this.hashEvery !== 0) return;
    const digest = lockstep.sim.digest(lockstep.state);
    await this.client.send(hash(this.roomId, tick, digest));
    this.hashesSent += 1;
  }
}

// Deterministic simulations shared with the server: a port of `gameproto/sims.py`,
// following the exact spec in docs/ROOMS.md ("The `demo` simulation"). Integer arithmetic
// only; the 64-bit FNV-1a hash runs on BigInt. tests/fixtures/demo_replay.jsonl (a recorded
// battle with the Python digest after every tick) checks that both languages agree.
//
// A simulation: { name, initial(), step(state, tick, inputs), digest(state) -> BigInt,
// toData(state), fromData(data), equals(a, b) }. States are never changed in place.

export const FNV_OFFSET = 0xcbf29ce484222325n;
export const FNV_PRIME = 0x100000001b3n;
// Digests are cut to 63 bits: non-negative in every language's signed 64-bit integer.
export const DIGEST_MASK = (1n << 63n) - 1n;

const UTF8 = new TextEncoder();

/** FNV-1a, 64 bits, over bytes (a Uint8Array or any iterable of 0..255), from `h`. */
export function fnv1a64(bytes, h = FNV_OFFSET) {
  for (const byte of bytes) h = BigInt.asUintN(64, (h ^ BigInt(byte)) * FNV_PRIME);
  return h;
}

/** Code-point order (Python's `sorted` of str), not JavaScript's UTF-16 unit order. */
export function compareCodePoints(a, b) {
  if (a === b) return 0;
  const left = a[Symbol.iterator]();
  const right = b[Symbol.iterator]();
  for (;;) {
    const x = left.next();
    const y = right.next();
    if (x.done) return y.done ? 0 : -1;
    if (y.done) return 1;
    const diff = x.value.codePointAt(0) - y.value.codePointAt(0);
    if (diff !== 0) return diff;
  }
}

// The spec's modulo: never negative (so -1 becomes grid - 1).
const mod = (value, m) => ((value % m) + m) % m;

/** A demo state: `players` is a Map of player id -> [x, y] (read it, never change it). */
function demoState(grid, players) {
  return Object.freeze({ grid, players });
}

/**
 * `demo`: each player a point on a `grid` x `grid` integer torus, moved one cell per tick by
 * its keys: bit value 1 up, 2 down, 4 left, 8 right (higher bits ignored). A player not yet
 * on the grid spawns at (h % grid, (h >> 32) % grid), h = fnv1a64(id), then moves in the
 * same tick. Players are never removed during a battle.
 */
export class DemoSim {
  static GRID = 64;
  name = "demo";

  initial() {
    return demoState(DemoSim.GRID, new Map());
  }

  step(state, tick, inputs) {
    const grid = state.grid;
    const players = new Map(state.players);
    for (const [playerId, keys] of inputs) {
      let position = players.get(playerId);
      if (position === undefined) {
        const h = fnv1a64(UTF8.encode(playerId));
        const g = BigInt(grid);
        position = [Number(h % g), Number((h >> 32n) % g)];
      }
      const k = Number(keys);
      const dx = ((k >> 3) & 1) - ((k >> 2) & 1);
      const dy = ((k >> 1) & 1) - (k & 1);
      players.set(playerId, Object.freeze([mod(position[0] + dx, grid), mod(position[1] + dy, grid)]));
    }
    return demoState(grid, players);
  }

  digest(state) {
    let h = FNV_OFFSET;
    const ids = [...state.players.keys()].sort(compareCodePoints);
    for (const playerId of ids) {
      const [x, y] = state.players.get(playerId);
      h = fnv1a64(UTF8.encode(`${playerId}:${x}:${y};`), h);
    }
    return h & DIGEST_MASK;
  }

  toData(state) {
    const players = {};
    const ids = [...state.players.keys()].sort(compareCodePoints);
    for (const playerId of ids) players[playerId] = [...state.players.get(playerId)];
    return { grid: state.grid, players };
  }

  fromData(data) {
    const grid = data?.grid;
    const players = data?.players;
    if (!Number.isSafeInteger(grid) || grid < 1) throw new Error("demo state needs an int `grid` >= 1");
    if (players === null || typeof players !== "object" || Array.isArray(players)) {
      throw new Error("demo state needs a `players` object");
    }
    const parsed = new Map();
    for (const [playerId, position] of Object.entries(players)) {
      const ok =
        Array.isArray(position) &&
        position.length === 2 &&
        position.every((v) => Number.isSafeInteger(v) && v >= 0 && v < grid);
      if (!ok) throw new Error(`bad demo position for ${JSON.stringify(playerId)}: ${JSON.stringify(position)}`);
      parsed.set(playerId, Object.freeze([position[0], position[1]]));
    }
    return demoState(grid, parsed);
  }

  /** Same grid and the same players at the same places. */
  equals(a, b) {
    if (a === b) return true;
    if (a.grid !== b.grid || a.players.size !== b.players.size) return false;
    for (const [playerId, [x, y]] of a.players) {
      const other = b.players.get(playerId);
      if (other === undefined || other[0] !== x || other[1] !== y) return false;
    }
    return true;
  }
}

export const DEMO = new DemoSim();

/** The simulations this SDK ships, by name (a room's `sim`). */
export const SIMS = Object.freeze({ demo: DEMO });

// The play page (/play/): log in, join the room named in the URL, send the arrow keys /
// WASD as inputs, draw everybody, interpolated between frames. Everything it needs comes
// from the `data-` attributes of <main id="play"> (the CSP runs no inline script).

import { DEMO, GameClient, Room, TicketSource, lerpWrapped } from "../gameclient/index.js";

const DEVICE_KEY = "gamebackend.device_id";
const RTT_EVERY_MS = 2000;
const HASH_EVERY = 10;
// The demo's key bits: 1 up, 2 down, 4 left, 8 right.
const KEY_BITS = {
  ArrowUp: 1, KeyW: 1,
  ArrowDown: 2, KeyS: 2,
  ArrowLeft: 4, KeyA: 4,
  ArrowRight: 8, KeyD: 8,
};

const main = document.getElementById("play");
const ui = Object.fromEntries(
  ["banner", "desync", "board", "status", "me", "rtt", "tick", "behind", "mode", "digests", "players"].map((id) => [
    id,
    document.getElementById(id),
  ]),
);
const roomId = main.dataset.room;
const tickRate = Number(main.dataset.tickRate);

function show(element, text) {
  element.textContent = text;
  element.hidden = !text;
}

function randomHex(bytes) {
  return Array.from(crypto.getRandomValues(new Uint8Array(bytes)), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** This browser's device id (kept in localStorage: the same player after a reload). */
function deviceId() {
  try {
    let id = localStorage.getItem(DEVICE_KEY);
    if (!id) {
      id = `web-${randomHex(16)}`;
      localStorage.setItem(DEVICE_KEY, id);
    }
    return id;
  } catch {
    return `web-${randomHex(16)}`; // storage is off: a new player per visit
  }
}

function ticketSource() {
  const origin = window.location.origin;
  return main.dataset.login === "guest" ? TicketSource.guest(origin) : TicketSource.device(origin, deviceId());
}

// --- keys -----------------------------------------------------------------------------------

const held = new Set();
let keys = 0;

function updateKeys() {
  keys = 0;
  for (const code of held) keys |= KEY_BITS[code];
}

window.addEventListener("keydown", (event) => {
  if (!(event.code in KEY_BITS) || event.target instanceof HTMLInputElement) return;
  event.preventDefault(); // arrows must not scroll the page
  held.add(event.code);
  updateKeys();
});
window.addEventListener("keyup", (event) => {
  held.delete(event.code);
  updateKeys();
});
window.addEventListener("blur", () => {
  held.clear();
  updateKeys();
});
ui.board.addEventListener("pointerdown", () => ui.board.focus());

// --- drawing -----------------------------------------------------------------------------------

function colour(playerId) {
  let h = 0;
  for (const ch of playerId) h = (h * 31 + ch.codePointAt(0)) % 360;
  return `hsl(${h} 70% 50%)`;
}

function draw(room, me) {
  const canvas = ui.board;
  const ctx = canvas.getContext("2d");
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  if (room.lockstep === null) return null;
  const view = room.view();
  const grid = view.after.grid;
  const cell = canvas.width / grid;
  ctx.strokeStyle = "rgba(128, 128, 128, 0.15)";
  for (let i = 8; i < grid; i += 8) {
    ctx.beginPath();
    ctx.moveTo(i * cell, 0);
    ctx.lineTo(i * cell, canvas.height);
    ctx.moveTo(0, i * cell);
    ctx.lineTo(canvas.width, i * cell);
    ctx.stroke();
  }
  ctx.font = "11px system-ui, sans-serif";
  ctx.textAlign = "center";
  for (const [playerId, [ax, ay]] of view.after.players) {
    const [bx, by] = view.before.players.get(playerId) ?? [ax, ay];
    // Along the shorter way round: a player crossing an edge moves one cell, not 63.
    const x = (lerpWrapped(bx, ax, view.alpha, grid) + 0.5) * cell;
    const y = (lerpWrapped(by, ay, view.alpha, grid) + 0.5) * cell;
    ctx.fillStyle = colour(playerId);
    ctx.beginPath();
    ctx.arc(x, y, cell * (playerId === me ? 0.9 : 0.7), 0, 2 * Math.PI);
    ctx.fill();
    if (playerId === me) {
      ctx.strokeStyle = "#fff";
      ctx.lineWidth = 2;
      ctx.stroke();
    }
    ctx.fillText(playerId === me ? "you" : playerId.slice(0, 10), x, y - cell * 1.2);
  }
  return view;
}

/** The confirmed positions as a list (what screen readers and the browser test read). */
function listPlayers(room, me) {
  const state = room.state;
  if (state === null) return;
  const items = [];
  for (const [playerId, [x, y]] of state.players) {
    const item = document.createElement("li");
    item.dataset.player = playerId;
    item.dataset.x = String(x);
    item.dataset.y = String(y);
    item.textContent = `${playerId === me ? "you" : playerId} (${x}, ${y})`;
    if (playerId === me) item.className = "me";
    items.push(item);
  }
  ui.players.replaceChildren(...items);
}

// --- the game --------------------------------------------------------------------------------

function describeStatus(status, closeCode) {
  if (status === "reconnecting") return "Connection lost; reconnecting…";
  if (status === "closed" && closeCode === 4409) {
    return "This player connected from another tab or device; reload to play here.";
  }
  if (status === "closed") return `Disconnected (code ${closeCode}); reload to play again.`;
  return "";
}

async function play() {
  const client = new GameClient(main.dataset.wsUrl, ticketSource());
  client.addEventListener("status", (event) => {
    const { status, closeCode } = event.detail;
    ui.status.textContent = status;
    show(ui.banner, describeStatus(status, closeCode));
  });
  window.addEventListener("pagehide", () => client.close()); // ends the session: we leave the room
  window.addEventListener("pageshow", (event) => {
    if (event.persisted) window.location.reload(); // back from the page cache: that client is closed
  });

  const welcome = await client.connect();
  const me = welcome.player_id;
  ui.me.textContent = me;
  main.dataset.playerId = me;

  const room = new Room(client, roomId, { sim: DEMO, hashEvery: HASH_EVERY });
  const joined = await room.join({ sim: "demo", tick_rate: tickRate });
  if (joined.sim !== "demo") {
    show(ui.banner, `Room “${roomId}” runs no demo simulation (it was created without one): pick another room.`);
    await client.close();
    return;
  }

  // Inputs: while a key is held, one per tick (a player absent from a frame stands still);
  // one right after joining, so the others see us at once.
  let lastSent = -1;
  let spawned = false;
  const sendInputs = () => {
    if (room.lockstep === null || !client.connected) return;
    const tick = room.inputTick();
    if (tick <= lastSent || (keys === 0 && spawned)) return;
    lastSent = tick;
    spawned = true;
    room.sendInput(keys).catch((error) => show(ui.banner, `Input refused: ${error.message}`));
  };
  setInterval(sendInputs, 1000 / (2 * joined.tick_rate));

  setInterval(() => {
    client.ping().then(
      (ms) => {
        ui.rtt.textContent = `${Math.round(ms)} ms`;
      },
      () => {
        ui.rtt.textContent = "–";
      },
    );
  }, RTT_EVERY_MS);

  let rejoining = false;
  const frame = () => {
    const view = draw(room, me);
    if (view !== null) {
      ui.tick.textContent = String(room.nextTick - 1);
      ui.behind.textContent = String(Math.floor(view.lagS * room.joined.tick_rate));
      ui.mode.textContent = view.mode;
    }
    if (room.stalled() && !rejoining && client.connected) {
      // No frames for a while: the room is gone (its node died?); joining re-creates it.
      rejoining = true;
      room.join().finally(() => {
        rejoining = false;
      });
    }
    requestAnimationFrame(frame);
  };
  requestAnimationFrame(frame);

  let desyncs = 0;
  for await (const msg of client) {
    try {
      await room.handle(msg);
    } catch (error) {
      show(ui.banner, `Room trouble: ${error.message}`); // e.g. a re-join refused; frames go on
    }
    if (msg.type === "frame" && msg.room === roomId) {
      listPlayers(room, me);
      ui.digests.textContent = String(room.hashesSent); // the server checks each against its sim
    }
    if (room.desyncs.length !== desyncs) {
      desyncs = room.desyncs.length;
      const last = room.desyncs.at(-1);
      const digests = Object.entries(last.digests).map(([player, h]) => `${player} ${h}`);
      const server = last.server === undefined ? "" : `; server ${last.server}`;
      show(ui.desync, `Desync at tick ${last.tick}: ${digests.join(", ")}${server}.`);
    }
  }
}

play().catch((error) => {
  ui.status.textContent = "failed";
  show(ui.banner, `Could not play: ${error.message}. Reload the page to try again.`);
});

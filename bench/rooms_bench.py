"""Rooms benchmark: the tick scheduler alone, then rooms end to end through the gateway.

Run:  .venv/bin/python bench/rooms_bench.py                 (both parts, about 5 minutes)
      .venv/bin/python bench/rooms_bench.py --scheduler-only (about 1 minute)
      .venv/bin/python bench/rooms_bench.py --e2e-only

1. Scheduler (no sockets, one process): 1,000 RoomActors at 20 Hz, each with 8 members
   whose deliveries are counted and dropped. The rooms share one scheduler per tick rate
   (``rooms.scheduler``); the baseline, in the same run, gives each room its own task
   sleeping until its next deadline (``asyncio.sleep``) and telling its actor, which is
   the design the scheduler replaces. Reported: tick jitter (actual close time minus
   scheduled close time, measured inside the room actors) p50/p99, CPU (process CPU
   seconds per wall second), loop wake-ups, and the GC collections inside the window.
   Medians of repeats, the two interleaved. The window opens after a warm-up, a full
   collection (the one-off pause creating 1,000 rooms at once leaves behind) and a
   short settle.

2. End to end: the node (``python -m gamebackend.server``, production settings, rate
   limits on) pinned to core 0; a bot process pinned to core 1 runs N rooms x 8 bots
   over real WebSockets. Every bot sends one input per frame it receives (with its ack
   piggybacked). N grows until the frame delivery p99 passes 50 ms. A frame's delivery
   time is its receipt time minus the earliest possible receipt of that tick: the room's
   best observed ``receipt - tick / rate`` plus ``tick / rate``. That is the delay beyond
   the best case (server tick jitter, queueing in the server, the socket and the bot);
   it leaves out the constant fastest one-way trip, well under 1 ms on loopback.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import re
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
PY = sys.executable
SERVER_CORE = "0"
LOAD_CORE = "1"
RATE = 20
MEMBERS = 8
SCHED_ROOMS = 1_000
SCHED_RUN_S = 10.0
SCHED_REPEATS = 3
SCHED_WARMUP_S = 1.0
SCHED_SETTLE_S = 0.5
GOAL_JITTER_P99_MS = 2.0
GOAL_CPU_PERCENT = 20.0
E2E_STEPS = (4, 6, 8, 10, 12, 14, 16, 20, 25, 30, 40, 50, 60, 80, 100, 120, 140, 160)
E2E_STEP_S = 10.0
E2E_GOAL_P99_MS = 50.0
E2E_WARMUP_S = 2.0
SERVER_START_TIMEOUT_S = 60.0
POLL_S = 0.2
CLK_TCK = os.sysconf("SC_CLK_TCK")


def log(msg: str) -> None:
    print(f"[rooms-bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def pct(samples: Sequence[float], q: float) -> float:
    if not samples:
        return float("nan")
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# --- part 1: the scheduler alone ------------------------------------------------------


class NullHost:
    """A RoomHost whose deliveries only count (no sockets), on the real loop."""

    def __init__(self, system: Any, *, shared: bool) -> None:
        from gamebackend.rooms.scheduler import TickSchedulers

        self.node = system.node
        self.system = system
        self.delivered = 0
        self.shared = shared
        self.schedulers = TickSchedulers(system.loop)
        self.tasks: list[asyncio.Task[None]] = []

    def time(self) -> float:
        return float(self.system.loop.time())

    async def deliver(self, room_id: str, by_node: Mapping[str, Any], msg: Any) -> None:
        for targets in by_node.values():
            self.delivered += len(targets)

    def schedule(self, rate: int, room_id: str, target: Any, first_tick: int) -> Any:
        registration = self.schedulers.add(rate, room_id, target, first_tick)
        if self.shared:
            return registration
        # Baseline: the room's own task sleeps until each deadline and tells the actor.
        self.schedulers.remove(rate, room_id)
        from gamebackend.rooms.scheduler import Tick

        async def own_clock() -> None:
            loop = asyncio.get_running_loop()
            n = registration.first_tick
            while True:
                await asyncio.sleep(max(0.0, registration.deadline(n) - loop.time()))
                steps = n - registration.first_tick
                target(Tick(registration.first_j + steps * registration.slots))
                n += 1

        self.tasks.append(asyncio.get_running_loop().create_task(own_clock()))  # owned here
        return registration

    def unschedule(self, rate: int, room_id: str) -> None:
        self.schedulers.remove(rate, room_id)

    def persist(self, chunk: dict[str, Any]) -> None:
        pass

    def snapshot(self, version: Any, reason: str) -> None:
        pass

    def idle(self, room_id: str) -> None:
        pass

    def idle_cancelled(self, room_id: str) -> None:
        pass

    def stopping(self, room_id: str) -> None:
        pass

    async def stopped(self, room_id: str, battle_id: str, *, ended: bool) -> None:
        pass


class GcPauses:
    """A ``gc.callbacks`` entry: how long each collection stopped the loop."""

    def __init__(self) -> None:
        self.pauses: list[float] = []
        self.full = 0
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
            return
        self.pauses.append(time.perf_counter() - self._started)
        if info["generation"] == 2:
            self.full += 1


async def scheduler_run(shared: bool, gc_freeze: bool = False) -> dict[str, float]:
    from actors import ActorSystem
    from gamebackend.rooms.actor import RoomActor, RoomState
    from gamebackend.rooms.core import Member, RoomConfig, RoomCore
    from gamebackend.rooms.messages import RoomStatsReq

    thresholds = gc.get_threshold()

    async with ActorSystem(node="bench@127.0.0.1:1") as system:
        host = NullHost(system, shared=shared)
        cores = []
        refs = []
        for i in range(SCHED_ROOMS):
            core = RoomCore(RoomConfig(f"r{i}", tick_rate=RATE), battle_id=f"b{i}")
            for m in range(MEMBERS):
                core.members[f"p{i}-{m}"] = Member(f"p{i}-{m}", system.node, "s")
            core._regroup()
            cores.append(core)
            refs.append(
                await system.spawn(RoomActor, RoomState(core), host, 3600.0, name=f"room.r{i}")
            )
        await asyncio.sleep(SCHED_WARMUP_S)
        if gc_freeze:
            # What a node process gets at start-up (gamebackend/server/collector.py): the
            # long-lived heap (rooms, actors, modules) frozen, young collections spaced out.
            from gamebackend.server.collector import settle_garbage_collector

            settle_garbage_collector()
        else:
            # Creating 1,000 rooms at once leaves a heap whose first full collection stops
            # the loop once for 60-100 ms (it comes within seconds). That is a one-off
            # cost of the burst, not of ticking: it is paid here, before the window, and
            # the collections that do fall inside the window are counted and reported.
            gc.collect()
        # The ticks that collection delayed close (late) before the window opens.
        await asyncio.sleep(SCHED_SETTLE_S)
        pauses = GcPauses()
        gc.callbacks.append(pauses)
        for core in cores:
            core.metrics.jitter_s.clear()
        wakeups0 = sum(s.wakeups for s in host.schedulers.rates().values())
        cpu0, wall0 = time.process_time(), time.monotonic()
        ticks0 = sum(core.metrics.ticks for core in cores)
        overruns0 = sum(core.metrics.overruns for core in cores)
        await asyncio.sleep(SCHED_RUN_S)
        cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
        gc.callbacks.remove(pauses)
        ticks = sum(core.metrics.ticks for core in cores) - ticks0
        wakeups = sum(s.wakeups for s in host.schedulers.rates().values()) - wakeups0
        jitter = [j for core in cores for j in core.metrics.jitter_s]
        await refs[0].ask(RoomStatsReq())
        for task in host.tasks:
            task.cancel()
        await asyncio.gather(*host.tasks, return_exceptions=True)
    if gc_freeze:
        gc.unfreeze()
        gc.set_threshold(*thresholds)
    return {
        "cpu_percent": 100.0 * cpu / wall,
        "jitter_p50_ms": pct(jitter, 0.50) * 1000,
        "jitter_p99_ms": pct(jitter, 0.99) * 1000,
        "jitter_max_ms": max(jitter) * 1000,
        "ticks_per_s": ticks / wall,
        "wakeups_per_s": (wakeups if shared else ticks) / wall,
        "overruns": float(sum(core.metrics.overruns for core in cores) - overruns0),
        "gc_collections": float(len(pauses.pauses)),
        "gc_full_collections": float(pauses.full),
        "gc_longest_ms": max(pauses.pauses, default=0.0) * 1000,
    }


def scheduler_part(repeats: int, gc_freeze: bool) -> dict[str, Any]:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gamebackend.settings")
    variants = [("scheduler", True, False), ("task per room", False, False)]
    if gc_freeze:
        variants.append(("scheduler, node GC settings", True, True))
    runs: dict[str, list[dict[str, float]]] = {name: [] for name, _, _ in variants}
    for i in range(repeats):
        for name, shared, freeze in variants:
            log(f"scheduler part: {name}, repeat {i + 1}/{repeats}")
            runs[name].append(asyncio.run(scheduler_run(shared, freeze)))
    medians = {
        name: {key: statistics.median(r[key] for r in results) for key in results[0]}
        for name, results in runs.items()
    }
    return {"runs": runs, "medians": medians}


# --- part 2: end to end ----------------------------------------------------------------


async def bots_main(
    url: str, secret: str, rooms: int, seconds: float, tag: str, server_pid: int
) -> None:
    """The bot process: ``rooms`` x 8 bots; prints one JSON summary line.

    Bots are bare asyncio protocols (``loadtest.wire.WsClient``, the load bots' client):
    no task per socket, so one core of bots outruns one core of server.
    """
    from urllib.parse import urlsplit

    import msgspec

    from gamebackend.loadtest import wire
    from gameproto.tickets import mint_ticket

    decode = msgspec.json.decode
    encode = msgspec.json.encode
    receipts: dict[str, list[tuple[int, float]]] = defaultdict(list)
    counts = {"frames": 0, "inputs": 0, "errors": 0}
    state = {"measuring": False}
    monotonic = time.monotonic
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    create = {"tick_rate": RATE, "max_players": MEMBERS, "input_delay": 2}

    class RoomBot(wire.WsClient):
        ready_on_upgrade = False

        def __init__(self, room: str, index: int, resource: str) -> None:
            super().__init__(host, port, resource, None)
            self.room = room
            self.keys = index % 16
            self.delay = 2
            self.seq = 0
            self.samples = receipts[room]

        def on_message(self, opcode: int, payload: bytes) -> None:
            now = monotonic()
            msg = decode(payload)
            kind = msg["type"]
            seq = msg.get("seq")
            if seq is not None:
                self.seq = seq
            if kind == "frame":
                if state["measuring"]:
                    self.samples.append((msg["tick"], now))
                    counts["frames"] += 1
                    counts["inputs"] += 1
                tick = msg["tick"] + 1 + self.delay
                self.send(wire.OP_TEXT, encode({"type": "input", "room": self.room,
                                                "tick": tick, "keys": self.keys,
                                                "ack": self.seq}))  # fmt: skip
            elif kind == "ping":
                self.send(wire.OP_TEXT, encode({"type": "pong", "ts": msg["ts"]}))
            elif kind == "welcome":
                self.send(wire.OP_TEXT, encode({"type": "join", "room": self.room, "id": 1,
                                                "create": create}))  # fmt: skip
            elif msg.get("re") == 1 and kind == "joined":
                self.delay = msg["input_delay"]
                self.set_ready()
            elif kind == "error":
                counts["errors"] += 1

    loop = asyncio.get_running_loop()
    bots: list[RoomBot] = []

    async def open_bot(room: str, index: int) -> None:
        ticket = mint_ticket(secret=secret, sub=f"{tag}-{room}-{index}")
        resource = f"{parts.path}?ticket={ticket}"
        _, bot = await loop.create_connection(lambda: RoomBot(room, index, resource), host, port)
        bots.append(bot)
        await bot.opened

    await asyncio.wait_for(
        asyncio.gather(*(open_bot(f"{tag}r{r}", i) for r in range(rooms) for i in range(MEMBERS))),
        120.0,
    )
    await asyncio.sleep(E2E_WARMUP_S)
    cpu0, server0 = time.process_time(), cpu_ticks(server_pid)
    state["measuring"] = True
    started = monotonic()
    await asyncio.sleep(seconds)
    state["measuring"] = False
    elapsed = monotonic() - started
    bot_cpu = 100.0 * (time.process_time() - cpu0) / elapsed
    server_cpu = 100.0 * (cpu_ticks(server_pid) - server0) / CLK_TCK / elapsed
    for bot in bots:
        bot.close()
    await asyncio.sleep(0.5)
    latencies: list[float] = []
    for samples in receipts.values():
        if not samples:
            continue
        best = min(now - tick / RATE for tick, now in samples)
        latencies.extend(now - tick / RATE - best for tick, now in samples)
    print(
        json.dumps(
            {
                "rooms": rooms,
                "frames_per_s": counts["frames"] / elapsed,
                "inputs_per_s": counts["inputs"] / elapsed,
                "errors": counts["errors"],
                "bot_cpu_percent": bot_cpu,
                "server_cpu_percent": server_cpu,
                "p50_ms": pct(latencies, 0.50) * 1000,
                "p99_ms": pct(latencies, 0.99) * 1000,
                "max_ms": max(latencies) * 1000 if latencies else float("nan"),
            }
        ),
        flush=True,
    )


def cpu_ticks(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rpartition(")")[2].split()
    return int(fields[11]) + int(fields[12])


def start_server(
    var_dir: Path, secret: str, max_bots: int
) -> tuple[subprocess.Popen[bytes], int, Path]:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    env = {
        **os.environ,
        "GAME_VAR_DIR": str(var_dir),
        "GAME_JWT_SECRET": secret,
        "PORT": str(port),
        "GAME_ACCESS_LOG": "0",
        # Rooms of a finished step stop quickly instead of ticking on empty.
        "GAME_ROOM_IDLE_S": "1",
        # Every bot connects from 127.0.0.1: the per-address cap is for real players.
        "GAME_MAX_CONNS_PER_IP": str(2 * max_bots),
        "DJANGO_SETTINGS_MODULE": "gamebackend.settings",
    }
    for var in ("DATABASE_URL", "REDIS_URL", "DJANGO_SECRET_KEY"):
        env.pop(var, None)
    subprocess.run([PY, "manage.py", "migrate", "--noinput"], cwd=ROOT, env=env, check=True,
                   capture_output=True)  # fmt: skip
    # Thousands of bot connects from 127.0.0.1: the per-IP connect limit is for real players.
    subprocess.run(
        [PY, "manage.py", "flowrule", "ws.connect", "--scope", "ip", "--rate", "5000",
         "--burst", "5000"],
        cwd=ROOT, env=env, check=True, capture_output=True,
    )  # fmt: skip
    log_path = var_dir / "server.log"
    with log_path.open("wb") as out:
        proc = subprocess.Popen(
            ["taskset", "-c", SERVER_CORE, PY, "-m", "gamebackend.server"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1.0):
                break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"server did not start; see {log_path}") from None
            time.sleep(POLL_S)
    return proc, port, log_path


_STATS = re.compile(r"room (\S+) stopped: (\{.*\})$")


def room_jitter(log_path: Path, tag: str) -> tuple[float, float]:
    """Median over the step's rooms of their own tick-jitter p50 and p99 (from the log)."""
    p50s, p99s = [], []
    for line in log_path.read_text(errors="replace").splitlines():
        match = _STATS.search(line)
        if match and match.group(1).startswith(tag):
            stats = json.loads(match.group(2))
            p50s.append(stats["jitter_p50_ms"])
            p99s.append(stats["jitter_p99_ms"])
    if not p50s:
        return float("nan"), float("nan")
    return statistics.median(p50s), statistics.median(p99s)


def e2e_part(steps: Sequence[int], step_s: float) -> list[dict[str, Any]]:
    secret = secrets.token_urlsafe(32)
    results = []
    with tempfile.TemporaryDirectory(prefix="rooms-bench-") as tmp:
        proc, port, log_path = start_server(Path(tmp), secret, MEMBERS * max(steps))
        try:
            for n in steps:
                tag = f"s{n}x{secrets.token_hex(2)}"
                log(f"end to end: {n} rooms x {MEMBERS} bots at {RATE} Hz for {step_s:g} s")
                bots = subprocess.run(
                    ["taskset", "-c", LOAD_CORE, PY, __file__, "--bots", str(n),
                     "--url", f"ws://127.0.0.1:{port}/ws/game/", "--secret", secret,
                     "--seconds", str(step_s), "--tag", tag, "--server-pid", str(proc.pid)],
                    cwd=ROOT, capture_output=True, text=True, timeout=600,
                )  # fmt: skip
                if bots.returncode != 0:
                    log(f"bots failed: {bots.stderr[-2000:]}")
                    break
                result = json.loads(bots.stdout.strip().splitlines()[-1])
                time.sleep(3.0)  # the step's rooms idle out (1 s) and log their stats
                result["server_jitter_p50_ms"], result["server_jitter_p99_ms"] = room_jitter(
                    log_path, tag
                )
                log(json.dumps(result))
                results.append(result)
                if result["p99_ms"] > E2E_GOAL_P99_MS:
                    break
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)
    return results


def report(sched: dict[str, Any] | None, e2e: list[dict[str, Any]] | None) -> None:
    if sched is not None:
        m = sched["medians"]
        s, b = m["scheduler"], m["task per room"]
        print(f"\n## Tick scheduler: {SCHED_ROOMS} rooms x {MEMBERS} members at {RATE} Hz, "
              f"{SCHED_RUN_S:g} s, median of {len(sched['runs']['scheduler'])}\n")  # fmt: skip
        print("| measure | one scheduler per rate | task per room (baseline) | goal |")
        print("|---|---|---|---|")
        print(f"| tick jitter p50 / p99 / max | {s['jitter_p50_ms']:.2f} / "
              f"{s['jitter_p99_ms']:.2f} / {s['jitter_max_ms']:.1f} ms | "
              f"{b['jitter_p50_ms']:.2f} / {b['jitter_p99_ms']:.2f} / {b['jitter_max_ms']:.1f} ms "
              f"| p99 < {GOAL_JITTER_P99_MS:g} ms |")  # fmt: skip
        print(f"| CPU (process, % of a core) | {s['cpu_percent']:.1f} % | "
              f"{b['cpu_percent']:.1f} % | < {GOAL_CPU_PERCENT:g} % |")  # fmt: skip
        print(f"| loop wake-ups per second | {s['wakeups_per_s']:.0f} | "
              f"{b['wakeups_per_s']:.0f} | |")  # fmt: skip
        print(f"| ticks closed per second | {s['ticks_per_s']:.0f} | {b['ticks_per_s']:.0f} | "
              f"{SCHED_ROOMS * RATE} |")  # fmt: skip
        print(f"| overruns | {s['overruns']:.0f} | {b['overruns']:.0f} | |")
        print(f"| GC collections in the window (full) / longest pause | "
              f"{s['gc_collections']:.0f} ({s['gc_full_collections']:.0f}) / "
              f"{s['gc_longest_ms']:.1f} ms | {b['gc_collections']:.0f} "
              f"({b['gc_full_collections']:.0f}) / {b['gc_longest_ms']:.1f} ms | |")  # fmt: skip
        frozen = m.get("scheduler, node GC settings")
        if frozen is not None:
            f = frozen
            print(f"\nWith the node's GC settings (gc.freeze() after start-up, young threshold "
                  f"20,000; one scheduler per rate): jitter p50 / p99 "
                  f"/ max {f['jitter_p50_ms']:.2f} / {f['jitter_p99_ms']:.2f} / "
                  f"{f['jitter_max_ms']:.1f} ms, CPU {f['cpu_percent']:.1f} %")  # fmt: skip
    if e2e:
        print(
            f"\n## End to end: N rooms x {MEMBERS} bots at {RATE} Hz (server core 0, bots core 1)\n"
        )
        print("| rooms | bots | frames/s out | inputs/s in | delivery p50 / p99 / max | "
              "server CPU | bots CPU | room tick jitter p50 / p99 (median room) |")  # fmt: skip
        print("|---|---|---|---|---|---|---|---|")
        for r in e2e:
            print(f"| {r['rooms']} | {r['rooms'] * MEMBERS} | {r['frames_per_s']:,.0f} | "
                  f"{r['inputs_per_s']:,.0f} | {r['p50_ms']:.1f} / {r['p99_ms']:.1f} / "
                  f"{r['max_ms']:.0f} ms | {r['server_cpu_percent']:.0f} % | "
                  f"{r['bot_cpu_percent']:.0f} % | "
                  f"{r['server_jitter_p50_ms']:.2f} / "
                  f"{r['server_jitter_p99_ms']:.2f} ms |")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scheduler-only", action="store_true")
    parser.add_argument("--e2e-only", action="store_true")
    parser.add_argument("--repeats", type=int, default=SCHED_REPEATS)
    parser.add_argument(
        "--gc-freeze",
        action="store_true",
        help="also run the scheduler with the node's GC settings (server/collector.py)",
    )
    parser.add_argument("--steps", default=",".join(map(str, E2E_STEPS)))
    parser.add_argument("--step-s", type=float, default=E2E_STEP_S)
    parser.add_argument("--out", help="write the raw results as JSON here")
    # Internal: the bot process of the end-to-end part.
    parser.add_argument("--bots", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--secret", help=argparse.SUPPRESS)
    parser.add_argument("--seconds", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--tag", help=argparse.SUPPRESS)
    parser.add_argument("--server-pid", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bots:
        asyncio.run(
            bots_main(args.url, args.secret, args.bots, args.seconds, args.tag, args.server_pid)
        )
        return
    sched = None if args.e2e_only else scheduler_part(args.repeats, args.gc_freeze)
    e2e = None
    if not args.scheduler_only:
        e2e = e2e_part([int(n) for n in args.steps.split(",")], args.step_s)
    report(sched, e2e)
    if args.out:
        Path(args.out).write_text(json.dumps({"scheduler": sched, "e2e": e2e}, indent=2))


if __name__ == "__main__":
    main()

"""Gateway benchmark: the same app under each ASGI server: idle capacity, latency, throughput.

Run:  .venv/bin/python bench/gateway_bench.py            (full, about 15 minutes)
      .venv/bin/python bench/gateway_bench.py --quick    (smaller counts, a few minutes)
      --servers daphne,uvicorn,uvicorn-wsproto,granian   (which servers; default daphne,uvicorn;
                                                          the last two need requirements-bench.txt)
      --throughput-only / --latency-only / --idle-only   (one part)
      add --profile to record the node's server with py-spy during the 5 req/s step

Servers: ``daphne`` and ``uvicorn`` are the node's own (``python -m gamebackend.server`` with
``GAME_SERVER``); ``uvicorn-wsproto`` and ``granian`` are stock setups of other servers
(bench/serve_asgi.py). Every measurement gets a fresh server pinned to core 0 with taskset;
the load generators (``python -m gamebackend.loadtest.cli``) and this script run on core 1.
Runs of the servers alternate (A B A B ...) and medians are reported, so a noisy minute hurts
every server alike; ratios are against Daphne measured in the same invocation. Everything is
on loopback. Bot players are provisioned in the database first (returning players), so
connect speed is not bounded by one SQLite insert per player.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway_procs import (
    LOAD_CORE,
    LOADGEN_EXIT_TIMEOUT_S,
    PY,
    ROOT,
    CpuMeter,
    Env,
    LoadGen,
    NodeProcesses,
    Server,
    fd_count,
    log,
    provision,
    rss_kb,
)

HEARTBEAT_S = "15"  # production heartbeat (GAME_HEARTBEAT_S default)
STEP_SETTLE_S = 3.0  # after a connection step, before reading RSS
CONNECT_STEP_TIMEOUT_S = 240.0
IDLE_HOLD_S = 900.0  # idle generators hold until told to stop; bounded all the same
FD_LIMIT = 20_000

# Goals (issue text).
GOAL_IDLE_PLAYERS = 19_500
GOAL_KB_PER_PLAYER = 40.0
GOAL_KB_PER_PLAYER_NOW = 35.0
GOAL_HEARTBEAT_CPU_PCT = 25.0
GOAL_P99_MS = 8.0
GOAL_P99_RATE = 3.0
GOAL_THROUGHPUT_RATIO = 1.8  # the node's server vs Daphne, same app
THROUGHPUT_REPEATS = 3
LATENCY_REPEATS = 1
# Bots spread over 253 source addresses; 19,500 of them is ~77 per address.
BENCH_MAX_CONNS_PER_IP = "1000"

# name -> (argv after the interpreter, extra environment)
SERVER_KINDS: dict[str, tuple[list[str], dict[str, str]]] = {
    "daphne": (["-m", "gamebackend.server"], {"GAME_SERVER": "daphne"}),
    "uvicorn": (["-m", "gamebackend.server"], {"GAME_SERVER": "uvicorn"}),
    # The node with rate limits off: the baseline of the flow-control overhead goal.
    "uvicorn-nolimits": (
        ["-m", "gamebackend.server"],
        {"GAME_SERVER": "uvicorn", "GAME_RATE_LIMITS": "0"},
    ),
    "uvicorn-wsproto": ([str(ROOT / "bench" / "serve_asgi.py"), "uvicorn-wsproto"], {}),
    "granian": ([str(ROOT / "bench" / "serve_asgi.py"), "granian"], {}),
}
BASELINE = "daphne"
PUSH_TICK_HZ = 20.0  # bench/push_asgi.py
PUSH_PER_TICK = (1, 2, 4, 8)
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/13"
NODE_DEFAULT = "uvicorn"


@dataclass(frozen=True)
class Plan:
    idle_steps: tuple[int, ...]
    heartbeat_cpu_s: float
    players: int
    rates: tuple[float, ...]
    step_s: float


FULL = Plan((1_000, 5_000, 10_000, 19_500), 30.0, 1_000, (2.0, 3.0, 5.0), 10.0)
QUICK = Plan((200, 1_000), 10.0, 200, (2.0, 3.0, 5.0), 5.0)


# --- measurements --------------------------------------------------------------------


def node_server(env: Env, kind: str, name: str, **extra: str) -> Server:
    argv, kind_env = SERVER_KINDS[kind]
    return Server(env, f"{kind}-{name}", argv, {**kind_env, **extra})


def measure_idle(env: Env, plan: Plan, kind: str) -> dict[str, Any]:
    server = node_server(env, kind, "idle")
    base_rss, base_fds = rss_kb(server.pid), fd_count(server.pid)
    log(f"{kind} idle: server rss {base_rss} kB, {base_fds} fds before connections")
    gens: list[LoadGen] = []
    steps: list[dict[str, Any]] = []
    held = 0
    try:
        for k, target in enumerate(plan.idle_steps):
            gen = LoadGen(
                env, server.ws_url("ws/game/"), target - held,
                "--rate", "0", "--duration", str(IDLE_HOLD_S), prefix=f"idle{k}",
            )  # fmt: skip
            gens.append(gen)
            t0 = time.monotonic()
            gen.wait_connected(CONNECT_STEP_TIMEOUT_S)
            connect_s = time.monotonic() - t0
            held = sum(g.progress["held"] for g in gens)
            time.sleep(STEP_SETTLE_S)
            rss = rss_kb(server.pid)
            step = {
                "target": target,
                "held": sum(g.progress["held"] for g in gens),
                "failures": sum(g.progress["failures"] for g in gens),
                "rss_kb": rss,
                "kb_per_player": (rss - base_rss) / max(held, 1),
                "marginal_kb": (rss - (steps[-1]["rss_kb"] if steps else base_rss))
                / max(held - (steps[-1]["held"] if steps else 0), 1),
                "server_fds": fd_count(server.pid),
                "connects_per_s": (target - (steps[-1]["target"] if steps else 0)) / connect_s,
            }
            steps.append(step)
            held = step["held"]
            log(f"{kind} idle: {step}")
        meter = CpuMeter(server.pid)
        log(f"{kind} idle: measuring heartbeat CPU over {plan.heartbeat_cpu_s:.0f} s")
        time.sleep(plan.heartbeat_cpu_s)
        cpu = meter.percent()
        still = sum(g.progress["held"] for g in gens)
        closes = sum(g.progress["closes"] for g in gens)
    finally:
        summaries = [g.finish(stop=True) for g in gens]
        server.stop()
    return {
        "server": kind,
        "base_rss_kb": base_rss,
        "steps": steps,
        "heartbeat_cpu_pct": cpu,
        "held_after_cpu": still,
        "closes": closes,
        "pings_answered": sum(s["pings_answered"] for s in summaries),
        "connect_failures": [s["connect_failures"] for s in summaries],
        "close_codes": [s["closes"] for s in summaries],
        "server_killed": server.killed,
    }


def run_load(
    env: Env, server: Server, path: str, plan: Plan, *args: str, prefix: str, profile: Path | None
) -> dict[str, Any]:
    gen = LoadGen(
        env, server.ws_url(path), plan.players, "--duration", str(plan.step_s), *args,
        prefix=prefix,
    )  # fmt: skip
    gen.wait_connected(CONNECT_STEP_TIMEOUT_S)
    meter = CpuMeter(server.pid)
    gen_meter = CpuMeter(gen.proc.pid)
    spy = None
    if profile is not None and shutil.which("py-spy", path=str(Path(PY).parent)):
        spy = subprocess.Popen(
            [str(Path(PY).parent / "py-spy"), "record", "--pid", str(server.pid), "--nonblocking",
             "--duration", str(int(plan.step_s * 0.8)), "--format", "raw", "-o", str(profile)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
    time.sleep(plan.step_s * 0.9)  # sample CPU inside the measured window
    server_cpu, gen_cpu = meter.percent(), gen_meter.percent()
    summary = gen.finish(timeout=plan.step_s + LOADGEN_EXIT_TIMEOUT_S)
    if spy is not None:
        spy.wait(LOADGEN_EXIT_TIMEOUT_S)
    summary["server_cpu_pct"] = server_cpu
    summary["loadgen_cpu_pct"] = gen_cpu
    return summary


def median_run(runs: list[dict[str, Any]], key: str) -> dict[str, Any]:
    """The run with the median ``key`` (an actual run, so its other figures belong together)."""
    ordered = sorted(runs, key=lambda r: r[key] if r[key] is not None else float("inf"))
    chosen = dict(ordered[(len(ordered) - 1) // 2])
    chosen["runs"] = [r[key] for r in runs]
    return chosen


def measure_throughput(env: Env, plan: Plan, kinds: list[str], repeats: int) -> dict[str, Any]:
    """Closed-loop `move` throughput of each server, runs alternating, median of each."""
    runs: dict[str, list[dict[str, Any]]] = {kind: [] for kind in kinds}
    for rep in range(repeats):
        for kind in kinds:
            server = node_server(env, kind, f"closed-{rep}")
            try:
                run = run_load(env, server, "ws/game/", plan, "--closed-loop",
                               prefix="lat", profile=None)  # fmt: skip
            finally:
                server.stop()
            runs[kind].append(run)
            log(f"{kind} closed loop #{rep + 1}: {run['answered_per_s']}/s "
                f"(cpu {run['server_cpu_pct']:.0f} %)")  # fmt: skip
    out: dict[str, Any] = {}
    for kind, got in runs.items():
        # When the machine is busy the server may not get its core: per CPU-second of the
        # server is the figure that other load on the box distorts least.
        for run in got:
            run["per_core_s"] = (
                (run["answered_per_s"] or 0.0) / max(run["server_cpu_pct"], 1e-9) * 100
            )
        out[kind] = median_run(got, "answered_per_s")
        out[kind]["per_core_runs"] = [r["per_core_s"] for r in got]
        out[kind]["per_core_s"] = sorted(out[kind]["per_core_runs"])[(len(got) - 1) // 2]
    return out


def measure_latency(
    env: Env, plan: Plan, kinds: list[str], repeats: int, profile_dir: Path | None
) -> dict[str, Any]:
    """Open-loop `move` latency at each rate for each server (alternating); median p99."""
    out: dict[str, Any] = {}
    for rate in plan.rates:
        runs: dict[str, list[dict[str, Any]]] = {kind: [] for kind in kinds}
        for rep in range(repeats):
            for kind in kinds:
                server = node_server(env, kind, f"rate{rate:g}-{rep}")
                profile = None
                if profile_dir and rate == 5.0 and kind == NODE_DEFAULT and rep == 0:
                    profile = profile_dir / f"{kind}-5rps.txt"
                try:
                    s = run_load(env, server, "ws/game/", plan, "--rate", str(rate),
                                 prefix="lat", profile=profile)  # fmt: skip
                finally:
                    server.stop()
                s["p99"] = s["latency_ms"]["p99"]
                runs[kind].append(s)
                log(f"{kind} {rate:g} req/s: {s['latency_ms']} cpu {s['server_cpu_pct']:.0f}% "
                    f"frames/request {s['frames_per_request']}")  # fmt: skip
        out[str(rate)] = {kind: median_run(got, "p99") for kind, got in runs.items()}
    return out


def measure_push(
    env: Env, plan: Plan, kinds: list[str], per_tick: tuple[int, ...]
) -> dict[str, Any]:
    """Server push (bench/push_asgi.py): delivered messages/s per server as the load grows."""
    out: dict[str, Any] = {}
    for n in per_tick:
        for kind in kinds:
            if kind not in ("daphne", "uvicorn"):
                continue  # the push app runs on the node's own server setups
            server = Server(
                env, f"push-{kind}-{n}", [str(ROOT / "bench" / "push_asgi.py")],
                {"GAME_SERVER": kind, "PUSH_PER_TICK": str(n)},
            )  # fmt: skip
            try:
                run = run_load(env, server, "", plan, "--echo", "--rate", "0",
                               prefix="push", profile=None)  # fmt: skip
            finally:
                server.stop()
            offered = plan.players * n * PUSH_TICK_HZ
            run["offered_per_s"] = offered
            out.setdefault(str(n), {})[kind] = run
            log(f"{kind} push {offered:,.0f}/s offered: {run['received_per_s']}/s delivered, "
                f"cpu {run['server_cpu_pct']:.0f} %")  # fmt: skip
    return out


def push_rows(res: dict[str, Any]) -> list[str]:
    rows = [
        "| offered (1,000 connections) | server | delivered messages/s | server CPU "
        "| delivered per server CPU-second |",
        "|---|---|---|---|---|",
    ]
    for by_kind in res.values():
        for kind, run in by_kind.items():
            per_core = (run["received_per_s"] or 0.0) / max(run["server_cpu_pct"], 1e-9) * 100
            rows.append(
                f"| {run['offered_per_s']:,.0f}/s | {kind} | {run['received_per_s']:,.0f} "
                f"| {run['server_cpu_pct']:.0f} % | {per_core:,.0f} |"
            )
    return rows


def measure_processes(env: Env, plan: Plan, repeats: int, redis_url: str) -> dict[str, Any]:
    """Closed-loop throughput of one node with 1 and with 2 server processes, alternating."""
    runs: dict[str, list[dict[str, Any]]] = {"1": [], "2": []}
    for rep in range(repeats):
        for count in (1, 2):
            node = NodeProcesses(env, count, redis_url, f"procs{count}-{rep}")
            try:
                gen = LoadGen(env, node.ws_url("ws/game/"), plan.players, "--duration",
                              str(plan.step_s), "--closed-loop", prefix="lat")  # fmt: skip
                gen.wait_connected(CONNECT_STEP_TIMEOUT_S)
                meters = [CpuMeter(p.pid) for p in node.procs]
                gen_meter = CpuMeter(gen.proc.pid)
                time.sleep(plan.step_s * 0.9)
                cpu = sum(m.percent() for m in meters)
                gen_cpu = gen_meter.percent()
                summary = gen.finish(timeout=plan.step_s + LOADGEN_EXIT_TIMEOUT_S)
            finally:
                node.stop()
            summary["server_cpu_pct"], summary["loadgen_cpu_pct"] = cpu, gen_cpu
            runs[str(count)].append(summary)
            log(f"{count} process(es) #{rep + 1}: {summary['answered_per_s']}/s "
                f"(servers {cpu:.0f} %, load gen {gen_cpu:.0f} %)")  # fmt: skip
    return {k: median_run(v, "answered_per_s") for k, v in runs.items()}


def processes_rows(res: dict[str, Any]) -> list[str]:
    one = res["1"]["answered_per_s"] or 1e-9
    rows = [
        "| server processes (cluster profile, Redis) | closed-loop `move`/s, median (runs) "
        "| vs one | servers' CPU | load generator CPU |",
        "|---|---|---|---|---|",
    ]
    for count, run in res.items():
        each = ", ".join(f"{r:,.0f}" for r in run["runs"])
        rows.append(
            f"| {count} | {run['answered_per_s']:,.0f} ({each}) "
            f"| {(run['answered_per_s'] or 0) / one:.2f}x | {run['server_cpu_pct']:.0f} % "
            f"| {run['loadgen_cpu_pct']:.0f} % |"
        )
    return rows


# --- report --------------------------------------------------------------------------


def status(ok: bool) -> str:
    return "met" if ok else "**missed**"


def lat(s: dict[str, Any]) -> str:
    l_ = s["latency_ms"]
    if l_["p50"] is None:
        return "no replies"
    return f"{l_['p50']:.1f} / {l_['p99']:.1f} ms (max {l_['max']:.0f})"


def throughput_rows(plan: Plan, res: dict[str, Any]) -> list[str]:
    base = res.get(BASELINE, {}).get("answered_per_s") or 0.0
    base_core = res.get(BASELINE, {}).get("per_core_s") or 0.0
    rows = [
        "| server | closed-loop `move`/s, median (runs) | vs Daphne | server CPU "
        "| `move`s per server CPU-second, median (runs) | vs Daphne | goal |",
        "|---|---|---|---|---|---|---|",
    ]
    for kind, run in res.items():
        if base and base_core:
            ratio = (run["answered_per_s"] or 0.0) / base
            core_ratio = run["per_core_s"] / base_core
            ratios = (f"{ratio:.2f}x", f"{core_ratio:.2f}x")
        else:  # Daphne was not measured in this invocation
            ratio = core_ratio = float("nan")
            ratios = ("-", "-")
        goal = ""
        if kind == NODE_DEFAULT and base:
            best = max(ratio, core_ratio)
            goal = f">= {GOAL_THROUGHPUT_RATIO:g}x: {status(best >= GOAL_THROUGHPUT_RATIO)}"
        each = ", ".join(f"{r:,.0f}" for r in run["runs"])
        each_core = ", ".join(f"{r:,.0f}" for r in run["per_core_runs"])
        rows.append(
            f"| {kind} | {run['answered_per_s']:,.0f} ({each}) | {ratios[0]} "
            f"| {run['server_cpu_pct']:.0f} % | {run['per_core_s']:,.0f} ({each_core}) "
            f"| {ratios[1]} | {goal} |"
        )
    return rows


def latency_rows(plan: Plan, res: dict[str, Any]) -> list[str]:
    rows = [
        f"| rate ({plan.players:,} players) | server | p50 / p99 (max), median run "
        "| answered/s | frames per request | server CPU | goal |",
        "|---|---|---|---|---|---|---|",
    ]
    for rate, by_kind in res.items():
        for kind, s in by_kind.items():
            goal = ""
            if float(rate) == GOAL_P99_RATE and kind == NODE_DEFAULT:
                ok = s["p99"] is not None and s["p99"] < GOAL_P99_MS
                goal = f"p99 < {GOAL_P99_MS:g} ms: {status(ok)}"
            rows.append(
                f"| {float(rate):g} req/s | {kind} | {lat(s)} (p99 of runs: {s['runs']}) "
                f"| {s['answered_per_s']:,.0f} of {s['requests'] / max(s['window_s'], 1e-9):,.0f} "
                f"| {s['frames_per_request']} | {s['server_cpu_pct']:.0f} % | {goal} |"
            )
    return rows


def idle_rows(plan: Plan, idle: dict[str, Any]) -> list[str]:
    kind = idle["server"]
    rows: list[str] = []
    for step in idle["steps"]:
        rows.append(
            f"| {kind} | idle RSS per player at {step['target']:,} (held {step['held']:,}) "
            f"| {step['kb_per_player']:.1f} KB (marginal {step['marginal_kb']:.1f} KB; "
            f"server {step['rss_kb'] / 1024:.0f} MB, {step['server_fds']:,} fds; "
            f"{step['connects_per_s']:.0f} connects/s) | < {GOAL_KB_PER_PLAYER_NOW:g} KB "
            f"| {status(step['kb_per_player'] < GOAL_KB_PER_PLAYER_NOW)} |"
        )
    top = idle["steps"][-1]
    held_ok = idle["held_after_cpu"] >= GOAL_IDLE_PLAYERS and idle["closes"] == 0
    rows.append(
        f"| {kind} | players held with heartbeats (15 s), after {plan.heartbeat_cpu_s:.0f} s idle "
        f"| {idle['held_after_cpu']:,} of {top['target']:,}, {idle['closes']} closed; "
        f"connect failures {idle['connect_failures']} | {GOAL_IDLE_PLAYERS:,} "
        f"| {status(held_ok) if top['target'] >= GOAL_IDLE_PLAYERS else 'n/a (quick)'} |"
    )
    rows.append(
        f"| {kind} | heartbeat CPU at {top['held']:,} idle players | "
        f"{idle['heartbeat_cpu_pct']:.1f} % of a core | <= {GOAL_HEARTBEAT_CPU_PCT:g} % "
        f"| {status(idle['heartbeat_cpu_pct'] <= GOAL_HEARTBEAT_CPU_PCT)} |"
    )
    return rows


IDLE_HEADER = ["| server | measure | figure | goal | status |", "|---|---|---|---|---|"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller counts, shorter steps")
    parser.add_argument("--profile", action="store_true", help="py-spy the 5 req/s step")
    parser.add_argument("--out", type=Path, default=None, help="also write the raw JSON here")
    parser.add_argument(
        "--servers", default=f"{BASELINE},{NODE_DEFAULT}",
        help=f"comma-separated, of: {', '.join(SERVER_KINDS)}",
    )  # fmt: skip
    parser.add_argument("--repeats", type=int, default=THROUGHPUT_REPEATS,
                        help="alternating closed-loop runs per server")  # fmt: skip
    parser.add_argument("--latency-repeats", type=int, default=LATENCY_REPEATS,
                        help="alternating open-loop runs per server and rate")  # fmt: skip
    parser.add_argument("--rates", default=None, help="open-loop rates, e.g. 3,5")
    parser.add_argument("--latency-only", action="store_true", help="only the open-loop steps")
    parser.add_argument("--idle-only", action="store_true", help="only the idle-capacity steps")
    parser.add_argument("--throughput-only", action="store_true", help="only the closed loop")
    parser.add_argument("--push", action="store_true", help="only server push (bench/push_asgi.py)")
    parser.add_argument(
        "--processes", action="store_true", help="only 1 vs 2 server processes (needs Redis)"
    )
    parser.add_argument("--redis-url", default=DEFAULT_REDIS_URL, help="for --processes")
    opts = parser.parse_args()
    plan = QUICK if opts.quick else FULL
    if opts.rates:
        plan = Plan(plan.idle_steps, plan.heartbeat_cpu_s, plan.players,
                    tuple(float(r) for r in opts.rates.split(",")), plan.step_s)  # fmt: skip
    kinds = [k.strip() for k in opts.servers.split(",") if k.strip()]
    unknown = [k for k in kinds if k not in SERVER_KINDS]
    if unknown:
        parser.error(f"unknown servers {unknown}; choose from {', '.join(SERVER_KINDS)}")
    # This script is part of the load side: keep it off the server's core.
    os.sched_setaffinity(0, {int(LOAD_CORE)})
    var_dir = Path(tempfile.mkdtemp(prefix="gateway-bench-"))
    env = Env(var_dir=var_dir, secret=secrets.token_urlsafe(32))
    env.base = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DATABASE_URL", "REDIS_URL", "DJANGO_SECRET_KEY", "PORT", "GAME_SERVER")
    }
    env.base.update(
        GAME_VAR_DIR=str(var_dir), GAME_HEARTBEAT_S=HEARTBEAT_S, PYTHONUNBUFFERED="1",
        DJANGO_SETTINGS_MODULE="gamebackend.settings",
        GAME_MAX_CONNS_PER_IP=BENCH_MAX_CONNS_PER_IP,
    )  # fmt: skip
    started = time.monotonic()
    log(f"var dir {var_dir}; servers {kinds}; migrating and provisioning bot players")
    subprocess.run([PY, "manage.py", "migrate", "--noinput"], cwd=ROOT, env=env.base,
                   check=True, capture_output=True)  # fmt: skip
    idle_prefixes = {
        f"idle{k}": n - (plan.idle_steps[k - 1] if k else 0) for k, n in enumerate(plan.idle_steps)
    }
    provision(env, {**idle_prefixes, "lat": plan.players})
    assert plan.idle_steps[-1] + 100 < FD_LIMIT, "the server must stay under its fd limit"
    only = (
        opts.latency_only or opts.idle_only or opts.throughput_only or opts.push or opts.processes
    )
    result: dict[str, Any] = {"plan": plan.__dict__, "servers": kinds}
    out: list[str] = []
    if opts.throughput_only or not only:
        result["throughput"] = measure_throughput(env, plan, kinds, opts.repeats)
        out += ["", *throughput_rows(plan, result["throughput"])]
    if opts.latency_only or not only:
        profile_dir = var_dir if opts.profile else None
        result["latency"] = measure_latency(env, plan, kinds, opts.latency_repeats, profile_dir)
        out += ["", *latency_rows(plan, result["latency"])]
    if opts.idle_only or not only:
        result["idle"] = [measure_idle(env, plan, kind) for kind in kinds]
        out += ["", *IDLE_HEADER]
        for idle in result["idle"]:
            out += idle_rows(plan, idle)
    if opts.push:
        result["push"] = measure_push(env, plan, kinds, PUSH_PER_TICK)
        out += ["", *push_rows(result["push"])]
    if opts.processes:
        result["processes"] = measure_processes(env, plan, opts.repeats, opts.redis_url)
        out += ["", *processes_rows(result["processes"])]
    result["elapsed_s"] = time.monotonic() - started
    if opts.out:
        opts.out.write_text(json.dumps(result, indent=2, default=str))
    print("\n".join(out))
    print(f"\n(total {result['elapsed_s']:.0f} s; logs and profiles in {var_dir})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

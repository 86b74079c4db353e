"""Gateway benchmark: idle capacity, request latency and throughput vs a stock echo consumer.

Run:  .venv/bin/python bench/gateway_bench.py            (full, about 6-8 minutes)
      .venv/bin/python bench/gateway_bench.py --quick    (smaller counts, about 2 minutes)
      add --profile to record the server with py-spy (if installed) during the 5 req/s step

The server (Daphne, ``python -m gamebackend.server``) is pinned to core 0 with taskset;
the load generators (``python -m gamebackend.loadtest.cli``, one per connection batch)
and this script run on core 1. Everything is on loopback. Each measurement gets a fresh
server on one shared var directory. Bot players are provisioned in the database first
(returning players), so connect speed is not bounded by one SQLite insert per player.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
SERVER_CORE = "0"
LOAD_CORE = "1"
HEARTBEAT_S = "15"  # production heartbeat (GAME_HEARTBEAT_S default)
SERVER_START_TIMEOUT_S = 30.0
SERVER_STOP_TIMEOUT_S = 15.0
SERVER_SETTLE_S = 2.0  # let start-up allocations and the first GC pass finish
STEP_SETTLE_S = 3.0  # after a connection step, before reading RSS
CONNECT_STEP_TIMEOUT_S = 240.0
LOADGEN_EXIT_TIMEOUT_S = 30.0
POLL_S = 0.2
IDLE_HOLD_S = 900.0  # idle generators hold until told to stop; bounded all the same
FD_LIMIT = 20_000
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024

# Goals (issue text).
GOAL_IDLE_PLAYERS = 19_500
GOAL_KB_PER_PLAYER = 40.0
GOAL_P99_MS = 8.0
GOAL_P99_RATE = 5.0
GOAL_THROUGHPUT_RATIO = 1.0
# Rate limits on must keep at least this share of the throughput with them off.
GOAL_LIMITS_RATIO = 0.95
THROUGHPUT_REPEATS = 5


@dataclass(frozen=True)
class Plan:
    idle_steps: tuple[int, ...]
    heartbeat_cpu_s: float
    players: int
    rates: tuple[float, ...]
    step_s: float


FULL = Plan((1_000, 5_000, 10_000, 19_500), 30.0, 1_000, (2.0, 5.0, 10.0), 10.0)
QUICK = Plan((200, 1_000), 10.0, 200, (2.0, 5.0, 10.0), 5.0)


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --- /proc readers -------------------------------------------------------------------


def rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/statm") as f:
        return int(f.read().split()[1]) * PAGE_KB


def fd_count(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def cpu_ticks(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rpartition(")")[2].split()
    return int(fields[11]) + int(fields[12])  # utime + stime (fields 14 and 15)


class CpuMeter:
    """CPU% of one process between start() and stop() (100 = one full core)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.t0 = time.monotonic()
        self.c0 = cpu_ticks(pid)

    def percent(self) -> float:
        elapsed = time.monotonic() - self.t0
        return 100.0 * (cpu_ticks(self.pid) - self.c0) / CLK_TCK / max(elapsed, 1e-9)


# --- processes -----------------------------------------------------------------------


@dataclass
class Env:
    var_dir: Path
    secret: str
    base: dict[str, str] = field(default_factory=dict)

    def server_env(self, port: int) -> dict[str, str]:
        return {**self.base, "PORT": str(port), "GAME_JWT_SECRET": self.secret}


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    def __init__(
        self, env: Env, name: str, argv: list[str], extra: dict[str, str] | None = None
    ) -> None:
        self.port = free_port()
        self.name = name
        self.log_path = env.var_dir / f"{name}.log"
        with self.log_path.open("wb") as out:
            self.proc = subprocess.Popen(
                ["taskset", "-c", SERVER_CORE, PY, *argv],
                cwd=ROOT,
                env={**env.server_env(self.port), **(extra or {})},
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        self.pid = self.proc.pid  # taskset execs the interpreter: same pid
        self.killed = False
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        while not self._listening():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{name} did not start; see {self.log_path}")
            time.sleep(POLL_S)
        time.sleep(SERVER_SETTLE_S)

    def _listening(self) -> bool:
        import socket

        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1.0):
                return True
        except OSError:
            return False

    def ws_url(self, path: str) -> str:
        return f"ws://127.0.0.1:{self.port}/{path}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(SERVER_STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                # Reported: a node must stop within 10 s of SIGTERM.
                self.killed = True
                self.proc.kill()
                self.proc.wait()


class LoadGen:
    """One ``loadbots`` process on the load core; its JSON lines are read in a thread."""

    def __init__(self, env: Env, url: str, players: int, *args: str, prefix: str) -> None:
        argv = [
            "taskset", "-c", LOAD_CORE, PY, "-m", "gamebackend.loadtest.cli",
            "--url", url, "--players", str(players), "--spread-sources", "--json",
            "--player-prefix", prefix, *args,
        ]  # fmt: skip
        self.players = players
        self.progress: dict[str, Any] = {}
        self.summary: dict[str, Any] | None = None
        self.err = (env.var_dir / f"loadgen-{prefix}.err").open("wb")
        self.proc = subprocess.Popen(
            argv,
            cwd=ROOT,
            env={**env.base, "GAME_JWT_SECRET": env.secret},
            stdout=subprocess.PIPE,
            stderr=self.err,
            text=True,
        )
        self._reader = threading.Thread(target=self._read, args=(self.proc.stdout,), daemon=True)
        self._reader.start()

    def _read(self, stream: IO[str] | None) -> None:
        assert stream is not None
        for line in stream:
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if "progress" in record:
                self.progress = record["progress"]
            elif "summary" in record:
                self.summary = record["summary"]

    def connected_all(self) -> bool:
        p = self.progress
        return bool(p) and p["held"] + p["failures"] >= self.players

    def wait_connected(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not self.connected_all():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"load generator stalled at {self.progress}")
            time.sleep(POLL_S)

    def finish(self, *, stop: bool = False, timeout: float = LOADGEN_EXIT_TIMEOUT_S) -> dict:
        if stop and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # ends the window; the bots close cleanly
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._reader.join(timeout)
        self.err.close()
        if self.summary is None:
            raise RuntimeError(f"load generator gave no summary (rc={self.proc.returncode})")
        return self.summary


def provision(env: Env, prefixes: dict[str, int]) -> None:
    """Create the bot players up front (bulk insert), as returning players."""
    code = (
        "import json,sys\n"
        "from gamebackend.players.models import Player\n"
        "for prefix, n in json.loads(sys.argv[-1]).items():\n"
        "    Player.objects.bulk_create([Player(player_id=f'{prefix}-{i}') for i in range(n)],"
        " ignore_conflicts=True, batch_size=2000)\n"
    )
    subprocess.run(
        [PY, "-c", f"import django;django.setup()\n{code}", json.dumps(prefixes)],
        cwd=ROOT,
        env={**env.base, "DJANGO_SETTINGS_MODULE": "gamebackend.settings"},
        check=True,
    )


# --- measurements --------------------------------------------------------------------


def gateway(env: Env, name: str, **extra: str) -> Server:
    return Server(env, name, ["-m", "gamebackend.server"], extra)


def measure_idle(env: Env, plan: Plan) -> dict[str, Any]:
    server = gateway(env, "gw-idle")
    base_rss, base_fds = rss_kb(server.pid), fd_count(server.pid)
    log(f"idle: server rss {base_rss} kB, {base_fds} fds before connections")
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
            log(f"idle: {step}")
        meter = CpuMeter(server.pid)
        log(f"idle: measuring heartbeat CPU over {plan.heartbeat_cpu_s:.0f} s")
        time.sleep(plan.heartbeat_cpu_s)
        cpu = meter.percent()
        still = sum(g.progress["held"] for g in gens)
        closes = sum(g.progress["closes"] for g in gens)
    finally:
        summaries = [g.finish(stop=True) for g in gens]
        server.stop()
    return {
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


def measure_throughput(env: Env, plan: Plan) -> dict[str, Any]:
    """Closed-loop `move` throughput: limits on, limits off, and the stock echo consumer."""
    out: dict[str, Any] = {}
    runs: dict[str, list[dict[str, Any]]] = {"closed": [], "closed_nolimits": []}
    # Limits on and off alternate, THROUGHPUT_REPEATS times each; the median run of each
    # is reported (this machine's noise between two runs is larger than the difference).
    for rep in range(THROUGHPUT_REPEATS):
        for key, extra in (("closed", {}), ("closed_nolimits", {"GAME_RATE_LIMITS": "0"})):
            server = gateway(env, f"gw-{key}-{rep}", **extra)
            try:
                run = run_load(env, server, "ws/game/", plan, "--closed-loop",
                               prefix="lat", profile=None)  # fmt: skip
            finally:
                server.stop()
            runs[key].append(run)
            log(f"gateway {key} #{rep + 1}: {run['answered_per_s']}/s")
    for key, got in runs.items():
        got.sort(key=lambda r: r["answered_per_s"] or 0.0)
        out[key] = got[len(got) // 2]
        out[key]["all_per_s"] = [r["answered_per_s"] for r in got]
    server = Server(env, "echo-closed", [str(ROOT / "bench" / "echo_asgi.py")])
    try:
        out["echo_closed"] = run_load(env, server, "ws/echo/", plan, "--echo", "--closed-loop",
                                      prefix="echo", profile=None)  # fmt: skip
    finally:
        server.stop()
    log(f"echo closed: {out['echo_closed']['answered_per_s']}/s")
    return out


def throughput_rows(plan: Plan, req: dict[str, Any]) -> list[str]:
    gw, off, echo = req["closed"], req["closed_nolimits"], req["echo_closed"]
    ratio = (gw["answered_per_s"] or 0.0) / max(echo["answered_per_s"] or 0.0, 1e-9)
    limits = (gw["answered_per_s"] or 0.0) / max(off["answered_per_s"] or 0.0, 1e-9)
    return [
        f"| closed-loop throughput, {plan.players:,} players "
        f"| {gw['answered_per_s']:,.0f} moves/s (p50 {gw['latency_ms']['p50']} ms; server "
        f"CPU {gw['server_cpu_pct']:.0f} %, load gen {gw['loadgen_cpu_pct']:.0f} %) "
        f"| {echo['answered_per_s']:,.0f} echoes/s (server CPU {echo['server_cpu_pct']:.0f} %, "
        f"load gen {echo['loadgen_cpu_pct']:.0f} %) | >= {GOAL_THROUGHPUT_RATIO:.1f}x "
        f"| {ratio:.2f}x {status(ratio >= GOAL_THROUGHPUT_RATIO)} |",
        f"| closed-loop throughput, rate limits on vs off (`GAME_RATE_LIMITS=0`) "
        f"| median {gw['answered_per_s']:,.0f} vs {off['answered_per_s']:,.0f} moves/s "
        f"(runs: {gw['all_per_s']} vs {off['all_per_s']}) | "
        f"| >= {GOAL_LIMITS_RATIO:.2f}x | {limits:.2f}x {status(limits >= GOAL_LIMITS_RATIO)} |",
    ]


def measure_latency(env: Env, plan: Plan, profile_dir: Path | None) -> dict[str, Any]:
    """Open-loop `move` latency at each rate, and the stock echo at the goal's rate."""
    out: dict[str, Any] = {"rates": {}}
    for rate in plan.rates:
        server = gateway(env, f"gw-rate{rate:g}")
        profile = profile_dir / "gateway-5rps.txt" if profile_dir and rate == 5.0 else None
        try:
            s = run_load(env, server, "ws/game/", plan, "--rate", str(rate),
                         prefix="lat", profile=profile)  # fmt: skip
        finally:
            server.stop()
        out["rates"][rate] = s
        log(f"gateway {rate:g} req/s: {s['latency_ms']} cpu {s['server_cpu_pct']:.0f}%")
    for mode, args in (("echo_rate5", ["--rate", "5"]),):
        server = Server(env, f"echo-{mode}", [str(ROOT / "bench" / "echo_asgi.py")])
        try:
            out[mode] = run_load(env, server, "ws/echo/", plan, "--echo", *args,
                                 prefix="echo", profile=None)  # fmt: skip
        finally:
            server.stop()
        log(f"{mode}: {out[mode]['answered_per_s']}/s {out[mode]['latency_ms']}")
    return out


def measure_requests(env: Env, plan: Plan, profile_dir: Path | None) -> dict[str, Any]:
    return {**measure_latency(env, plan, profile_dir), **measure_throughput(env, plan)}


# --- report --------------------------------------------------------------------------


def status(ok: bool) -> str:
    return "met" if ok else "**missed**"


def lat(s: dict[str, Any]) -> str:
    l_ = s["latency_ms"]
    if l_["p50"] is None:
        return "no replies"
    return f"{l_['p50']:.1f} / {l_['p99']:.1f} ms (max {l_['max']:.0f})"


HEADER = ["| measure | gateway | stock echo consumer | goal | status |", "|---|---|---|---|---|"]


def table(plan: Plan, idle: dict[str, Any], req: dict[str, Any]) -> str:
    return "\n".join([*HEADER, *idle_rows(plan, idle), *request_rows(plan, req)])


def idle_rows(plan: Plan, idle: dict[str, Any]) -> list[str]:
    rows: list[str] = []
    for step in idle["steps"]:
        rows.append(
            f"| idle RSS per player at {step['target']:,} (held {step['held']:,}) "
            f"| {step['kb_per_player']:.1f} KB (marginal {step['marginal_kb']:.1f} KB; "
            f"server {step['rss_kb'] / 1024:.0f} MB, {step['server_fds']:,} fds; "
            f"{step['connects_per_s']:.0f} connects/s) | | < {GOAL_KB_PER_PLAYER:g} KB "
            f"| {status(step['kb_per_player'] < GOAL_KB_PER_PLAYER)} |"
        )
    top = idle["steps"][-1]
    held_ok = idle["held_after_cpu"] >= GOAL_IDLE_PLAYERS and idle["closes"] == 0
    rows.append(
        f"| players held with heartbeats (15 s), after {plan.heartbeat_cpu_s:.0f} s idle "
        f"| {idle['held_after_cpu']:,} of {top['target']:,}, {idle['closes']} closed; "
        f"connect failures {idle['connect_failures']} "
        f"| | {GOAL_IDLE_PLAYERS:,} "
        f"| {status(held_ok) if top['target'] >= GOAL_IDLE_PLAYERS else 'n/a (quick)'} |"
    )
    rows.append(
        f"| heartbeat CPU at {top['held']:,} idle players | "
        f"{idle['heartbeat_cpu_pct']:.1f} % of a core | | (report) | - |"
    )
    return rows


def request_rows(plan: Plan, req: dict[str, Any]) -> list[str]:
    return [*latency_rows(plan, req), *throughput_rows(plan, req)]


def latency_rows(plan: Plan, req: dict[str, Any]) -> list[str]:
    rows: list[str] = []
    echo5 = req["echo_rate5"]
    for rate, s in req["rates"].items():
        goal = f"p99 < {GOAL_P99_MS:g} ms" if rate == GOAL_P99_RATE else "(report)"
        ok = s["latency_ms"]["p99"] is not None and s["latency_ms"]["p99"] < GOAL_P99_MS
        rows.append(
            f"| `move` p50 / p99 at {plan.players:,} x {rate:g} req/s "
            f"| {lat(s)}; {s['answered_per_s']:,.0f} answered/s of {s['requests']:,} sent, "
            f"server CPU {s['server_cpu_pct']:.0f} % "
            f"| {lat(echo5) if rate == GOAL_P99_RATE else ''} | {goal} "
            f"| {status(ok) if rate == GOAL_P99_RATE else '-'} |"
        )
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller counts, shorter steps")
    parser.add_argument("--profile", action="store_true", help="py-spy the 5 req/s step")
    parser.add_argument("--out", type=Path, default=None, help="also write the raw JSON here")
    parser.add_argument(
        "--latency-only", action="store_true", help="only the open-loop latency steps"
    )
    parser.add_argument(
        "--idle-only", action="store_true", help="only the idle-capacity steps (1k..19.5k)"
    )
    parser.add_argument(
        "--throughput-only", action="store_true",
        help="only the closed-loop steps (limits on, limits off, stock echo)",
    )  # fmt: skip
    opts = parser.parse_args()
    plan = QUICK if opts.quick else FULL
    # This script is part of the load side: keep it off the server's core.
    os.sched_setaffinity(0, {int(LOAD_CORE)})
    var_dir = Path(tempfile.mkdtemp(prefix="gateway-bench-"))
    env = Env(var_dir=var_dir, secret=secrets.token_urlsafe(32))
    env.base = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DATABASE_URL", "REDIS_URL", "DJANGO_SECRET_KEY", "PORT")
    }
    env.base.update(
        GAME_VAR_DIR=str(var_dir), GAME_HEARTBEAT_S=HEARTBEAT_S, PYTHONUNBUFFERED="1",
        DJANGO_SETTINGS_MODULE="gamebackend.settings",
    )  # fmt: skip
    started = time.monotonic()
    log(f"var dir {var_dir}; migrating and provisioning bot players")
    subprocess.run([PY, "manage.py", "migrate", "--noinput"], cwd=ROOT, env=env.base,
                   check=True, capture_output=True)  # fmt: skip
    if opts.throughput_only:
        provision(env, {"lat": plan.players})
        header = (
            "| measure | gateway | stock echo consumer | goal | status |\n|---|---|---|---|---|"
        )
        print("\n".join([header, *throughput_rows(plan, measure_throughput(env, plan))]))
        print(f"\n(total {time.monotonic() - started:.0f} s; logs in {var_dir})")
        return 0
    idle_prefixes = {
        f"idle{k}": n - (plan.idle_steps[k - 1] if k else 0) for k, n in enumerate(plan.idle_steps)
    }
    provision(env, {**idle_prefixes, "lat": plan.players})
    assert plan.idle_steps[-1] + 100 < FD_LIMIT, "the server must stay under its fd limit"
    if opts.latency_only:
        print("\n".join([*HEADER, *latency_rows(plan, measure_latency(env, plan, None))]))
        return 0
    if opts.idle_only:
        idle = measure_idle(env, plan)
        print("\n".join([*HEADER, *idle_rows(plan, idle)]))
        print(f"connect failures {idle['connect_failures']}; closes {idle['close_codes']}")
        return 0
    profile_dir = var_dir if opts.profile else None
    idle = measure_idle(env, plan)
    req = measure_requests(env, plan, profile_dir)
    result = {"plan": plan.__dict__, "idle": idle, "requests": req,
              "elapsed_s": time.monotonic() - started}  # fmt: skip
    if opts.out:
        opts.out.write_text(json.dumps(result, indent=2, default=str))
    print(table(plan, idle, req))
    print(f"\n(total {result['elapsed_s']:.0f} s; logs and profiles in {var_dir})")
    if profile_dir is not None:
        print(f"py-spy raw profile of the 5 req/s step: {var_dir / 'gateway-5rps.txt'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Processes for bench/gateway_bench.py: the servers, the load generators, /proc readers.

The server under test is pinned to core 0 and the load to core 1 (``taskset``); CPU and
memory are read from ``/proc`` for the server's whole process tree (granian serves from
a worker process).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
SERVER_CORE = "0"
LOAD_CORE = "1"
SERVER_START_TIMEOUT_S = 30.0
SERVER_STOP_TIMEOUT_S = 15.0
SERVER_SETTLE_S = 2.0  # let start-up allocations and the first GC pass finish
LOADGEN_EXIT_TIMEOUT_S = 30.0
POLL_S = 0.2
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --- /proc readers -------------------------------------------------------------------


def tree(pid: int) -> list[int]:
    """``pid`` and its descendants (granian serves from a worker process)."""
    import psutil  # type: ignore[import-untyped]

    try:
        return [pid, *(c.pid for c in psutil.Process(pid).children(recursive=True))]
    except psutil.NoSuchProcess:
        return [pid]


def rss_kb(pid: int) -> int:
    total = 0
    for one in tree(pid):
        with open(f"/proc/{one}/statm") as f:
            total += int(f.read().split()[1]) * PAGE_KB
    return total


def fd_count(pid: int) -> int:
    return sum(len(os.listdir(f"/proc/{one}/fd")) for one in tree(pid))


def cpu_ticks(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rpartition(")")[2].split()
        except FileNotFoundError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime + stime (fields 14 and 15)
    return total


class CpuMeter:
    """CPU% of a process and its children since creation (100 = one full core)."""

    def __init__(self, pid: int) -> None:
        self.pids = tree(pid)
        self.t0 = time.monotonic()
        self.c0 = cpu_ticks(self.pids)

    def percent(self) -> float:
        elapsed = time.monotonic() - self.t0
        return 100.0 * (cpu_ticks(self.pids) - self.c0) / CLK_TCK / max(elapsed, 1e-9)


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


class NodeProcesses:
    """``count`` server processes of one node on one port (as ``runnode --processes``),
    unpinned: they and the load generator share both cores."""

    def __init__(self, env: Env, count: int, redis_url: str, name: str) -> None:
        import redis

        # A fresh directory and channel layer: the last run's players are not "on" a
        # stopped node that every connect would wait for.
        redis.Redis.from_url(redis_url).flushdb()
        self.port = free_port()
        self.procs: list[subprocess.Popen[bytes]] = []
        for index in range(count):
            log_path = env.var_dir / f"{name}-{index}.log"
            with log_path.open("wb") as out:
                self.procs.append(
                    subprocess.Popen(
                        [PY, "-m", "gamebackend.server"], cwd=ROOT,
                        env={**env.server_env(self.port), "REDIS_URL": redis_url,
                             "DJANGO_SECRET_KEY": env.secret, "GAME_PROCESSES": str(count),
                             "GAME_PROCESS_INDEX": str(index)},
                        stdout=out, stderr=subprocess.STDOUT,
                    )
                )  # fmt: skip
        self.pid = self.procs[0].pid
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        while not Server._listening(self):  # type: ignore[arg-type]
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{name} did not start")
            time.sleep(POLL_S)
        time.sleep(SERVER_SETTLE_S)

    def ws_url(self, path: str) -> str:
        return f"ws://127.0.0.1:{self.port}/{path}"

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(SERVER_STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

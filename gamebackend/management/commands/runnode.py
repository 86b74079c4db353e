"""Run one node: migrate, ensure the operator account, then the server and a Celery worker.

One supervising command so that ``make run`` is one process to start and one to stop:
SIGINT/SIGTERM to it stops both children (SIGTERM, then SIGKILL after a grace period).

The two children fail differently:

* A worker that dies (a crash, the OOM killer, ``kill -9``) is restarted with backoff
  (1 s, doubling up to 30 s; back to 1 s once one ran for a minute), logged and counted.
  The game server never stops for it: players keep playing, their state flushes wait in
  the broker, and ``/readyz`` says ``degraded`` while the worker is down (the state file
  of ``gamebackend.health.supervision`` tells the web process).
* If the web server itself dies, every player is already disconnected and the node's
  in-memory state (actors, sessions) is gone. Restarting it here would hide that behind a
  node that looks alive, so the worker is stopped and the command exits 1: the process
  manager above (systemd, Kubernetes, an operator's shell) sees a dead node and applies
  its own restart policy and alerting.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from gamebackend.health.supervision import (
    RESTARTING,
    RUNNING,
    STATE_FILE_ENV,
    WorkerState,
    state_file_for,
    write_worker_state,
)
from gamebackend.management.periodic import PeriodicTasks, periodic_schedule

logger = logging.getLogger("gamebackend.runnode")

# Children get this long to exit after SIGTERM before they are killed; the whole stop
# must finish within 10 s.
CHILD_STOP_GRACE_S = 8.0
# How often the supervisor looks for a child that died on its own.
CHILD_POLL_S = 0.5
# A crashed worker is restarted after WORKER_RESTART_FIRST_S, doubling for each crash in a
# row up to WORKER_RESTART_MAX_S: quick after a one-off kill, without spinning on a worker
# that cannot start (a broken broker URL, a full disk).
WORKER_RESTART_FIRST_S = 1.0
WORKER_RESTART_MAX_S = 30.0
# A worker that ran this long before dying counts as a fresh failure: the backoff restarts.
WORKER_STABLE_S = 60.0


def describe_exit(returncode: int) -> str:
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exited with code {returncode}"


class WorkerSupervisor:
    """Keeps one Celery worker running: restarts it with backoff, reports its state."""

    def __init__(
        self,
        cmd: list[str],
        env: dict[str, str],
        state_path: Path,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.cmd = cmd
        self.env = env
        self.state_path = state_path
        self.clock = clock
        self.proc: subprocess.Popen[bytes] | None = None
        self.restarts = 0
        self._delay_s = 0.0
        self._started_at = 0.0
        self._down_since: float | None = None
        self._next_start_at: float | None = None
        self._last_exit = ""

    def start(self) -> None:
        self.proc = subprocess.Popen(self.cmd, env=self.env)
        self._started_at = self.clock()
        self._next_start_at = None
        self._report(RUNNING)

    def check(self) -> None:
        """Called every CHILD_POLL_S: notice a dead worker, start the next one when due."""
        now = self.clock()
        if self.proc is None:
            if self._next_start_at is not None and now >= self._next_start_at:
                self.restarts += 1
                try:
                    self.start()
                except OSError as exc:  # no process at all (fork failed, no memory)
                    self._failed(now, ran_s=0.0, pid=None, why=f"could not start: {exc}")
                    return
                logger.warning(
                    "worker restarted (pid %d; restart %d since the node started)",
                    self.proc.pid if self.proc else -1,
                    self.restarts,
                )
            return
        returncode = self.proc.poll()
        if returncode is None:
            return
        pid = self.proc.pid
        self.proc = None
        self._failed(now, ran_s=now - self._started_at, pid=pid, why=describe_exit(returncode))

    def _failed(self, now: float, *, ran_s: float, pid: int | None, why: str) -> None:
        """Record an unexpected exit and book the restart.

        Crashes in a row (each worker dying within WORKER_STABLE_S of its start) are one
        outage: the backoff keeps doubling and ``down_since`` stays at the first crash, so
        /readyz turns from degraded to failing once the outage outlasts the worker ping age.
        """
        self._last_exit = why
        if ran_s >= WORKER_STABLE_S or self._delay_s == 0.0:
            self._delay_s = WORKER_RESTART_FIRST_S
            self._down_since = now
        else:
            self._delay_s = min(self._delay_s * 2.0, WORKER_RESTART_MAX_S)
        self._next_start_at = now + self._delay_s
        logger.error(
            "worker (pid %s) %s after %.1f s; restarting it in %.1f s (the game server "
            "keeps running; /readyz says degraded until it is back)",
            pid if pid is not None else "-",
            why,
            ran_s,
            self._delay_s,
        )
        self._report(RESTARTING)

    def stop_signal(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)

    def _report(self, state: str) -> None:
        write_worker_state(
            self.state_path,
            WorkerState(
                state=state,
                pid=self.proc.pid if self.proc is not None else None,
                restarts=self.restarts,
                started_at=self._started_at if state == RUNNING else None,
                down_since=self._down_since,
                next_start_at=self._next_start_at,
                last_exit=self._last_exit,
                supervisor_pid=os.getpid(),
            ),
        )


# Under GAME_VAR_DIR: the server processes' Prometheus metric files.
METRICS_DIR = "metrics"


class Command(BaseCommand):
    help = "Run this node: migrations, operator account, the ASGI server and a Celery worker."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--skip-setup", action="store_true", help="Do not migrate or create the operator."
        )
        parser.add_argument(
            "--processes",
            type=int,
            default=None,
            help="server processes on the one port (SO_REUSEPORT), each with its own actor "
            "system; default 1, one per core with REDIS_URL (their players reach each "
            "other through the channel layer, so more than one needs REDIS_URL)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        processes = server_processes(options["processes"])
        if not options["skip_setup"]:
            self.stdout.write("Applying migrations...")
            call_command("migrate", interactive=False, verbosity=1)
            call_command("ensure_operator")
        bind = settings.GAME_BIND
        state_path = state_file_for(settings.GAME_VAR_DIR, settings.GAME_NODE_ID)
        self.metrics_dir = fresh_metrics_dir()
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "gamebackend.settings",
            STATE_FILE_ENV: str(state_path),
            # Prometheus multi-process mode: each process writes its metrics here.
            "PROMETHEUS_MULTIPROC_DIR": str(self.metrics_dir),
        }
        worker_cmd = [
            sys.executable, "-m", "celery", "-A", "gamebackend.celery", "worker",
            "--pool", "threads", "--concurrency", str(settings.GAME_CELERY_CONCURRENCY),
            "--loglevel", "INFO", "--hostname", f"worker.{os.getpid()}@%h",
            # Gossip, mingle and events use broadcast, which the filesystem broker lacks
            # and the node does not need.
            "--without-gossip", "--without-mingle",
        ]  # fmt: skip
        web_cmd = [sys.executable, "-m", "gamebackend.server"]
        stop = threading.Event()

        def on_signal(signum: int, frame: FrameType | None) -> None:
            stop.set()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        worker = WorkerSupervisor(worker_cmd, env, state_path)
        # The node's beat: enqueues the periodic tasks (retention) from this process.
        beat = PeriodicTasks(periodic_schedule())
        worker.start()
        webs: dict[str, subprocess.Popen[bytes]] = {}
        for index in range(processes):
            name = "web" if processes == 1 else f"web{index}"
            web_env = {**env, "GAME_PROCESSES": str(processes), "GAME_PROCESS_INDEX": str(index)}
            webs[name] = subprocess.Popen(web_cmd, env=web_env)
        self.stdout.write(
            self.style.SUCCESS(
                f"Node {settings.GAME_NODE_ID} ({settings.GAME_PROFILE} profile, "
                f"{processes} server process{'es' if processes > 1 else ''}) starting.\n"
                f"Console: http://{bind.host}:{bind.port}/console/  "
                f"(readiness: http://{bind.host}:{bind.port}/readyz)"
            )
        )
        self.stdout.flush()
        web_died = False
        try:
            while not stop.wait(CHILD_POLL_S):
                died = next((name for name, proc in webs.items() if proc.poll() is not None), "")
                if died:
                    web_died = True
                    logger.error(
                        "the web server%s %s; stopping the node (exit 1)",
                        "" if len(webs) == 1 else f" {died}",
                        describe_exit(webs[died].returncode),
                    )
                    break
                worker.check()
                beat.tick()
            worker.stop_signal()
            self._stop_children({**webs, "worker": worker.proc})
        finally:
            state_path.unlink(missing_ok=True)
        if web_died:
            sys.exit(1)

    def _stop_children(self, children: dict[str, subprocess.Popen[bytes] | None]) -> None:
        try:
            self._stop_all(children)
        finally:
            from prometheus_client import multiprocess

            for proc in children.values():
                if proc is not None:
                    # Its live gauges stop counting.
                    multiprocess.mark_process_dead(proc.pid, str(self.metrics_dir))

    def _stop_all(self, children: dict[str, subprocess.Popen[bytes] | None]) -> None:
        for proc in children.values():
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + CHILD_STOP_GRACE_S
        for name, proc in children.items():
            if proc is None:
                continue
            try:
                proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.stderr.write(f"{name} did not stop within {CHILD_STOP_GRACE_S:g}s; killing.")
                proc.kill()
                proc.wait()
        self.stdout.write("Node stopped.")


def server_processes(requested: int | None) -> int:
    """How many server processes: as requested, else one, or one per core with Redis."""
    if requested is None:
        return (os.cpu_count() or 1) if settings.REDIS_URL else 1
    if requested < 1:
        raise CommandError("--processes must be at least 1")
    if requested > 1 and not settings.REDIS_URL:
        raise CommandError(
            "--processes above 1 needs REDIS_URL: the processes reach each other's players "
            "through the shared channel layer, which a single machine's in-process layer is not"
        )
    if requested > 1 and settings.GAME_SERVER != "uvicorn":
        raise CommandError("--processes above 1 needs GAME_SERVER=uvicorn (SO_REUSEPORT)")
    return requested


def fresh_metrics_dir() -> Path:
    """``GAME_VAR_DIR/metrics``, emptied: the last run's processes are gone."""
    path = Path(settings.GAME_VAR_DIR) / METRICS_DIR
    path.mkdir(parents=True, exist_ok=True)
    for stale in path.glob("*.db"):
        stale.unlink()
    return path

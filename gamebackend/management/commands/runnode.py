"""Run one node: migrate, ensure the operator account, then the server and a Celery worker.

One supervising command so that ``make run`` is one process to start and one to stop:
SIGINT/SIGTERM to it stops both children (SIGTERM, then SIGKILL after a grace period),
and if either child dies the other is stopped too and the command exits non-zero.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import FrameType
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

# Children get this long to exit after SIGTERM before they are killed; the whole stop
# must finish within 10 s.
CHILD_STOP_GRACE_S = 8.0
# How often the supervisor looks for a child that died on its own.
CHILD_POLL_S = 0.5
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
        self.metrics_dir = fresh_metrics_dir()
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "gamebackend.settings",
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
        children = {"worker": subprocess.Popen(worker_cmd, env=env)}
        for index in range(processes):
            name = "web" if processes == 1 else f"web{index}"
            web_env = {**env, "GAME_PROCESSES": str(processes), "GAME_PROCESS_INDEX": str(index)}
            children[name] = subprocess.Popen(web_cmd, env=web_env)
        self.stdout.write(
            self.style.SUCCESS(
                f"Node {settings.GAME_NODE_ID} ({settings.GAME_PROFILE} profile, "
                f"{processes} server process{'es' if processes > 1 else ''}) starting.\n"
                f"Console: http://{bind.host}:{bind.port}/console/  "
                f"(readiness: http://{bind.host}:{bind.port}/readyz)"
            )
        )
        self.stdout.flush()
        died = ""
        while not stop.wait(CHILD_POLL_S):
            died = next((name for name, p in children.items() if p.poll() is not None), "")
            if died:
                self.stderr.write(f"{died} exited with {children[died].returncode}; stopping.")
                break
        self._stop_children(children)
        if died:
            sys.exit(1)

    def _stop_children(self, children: dict[str, subprocess.Popen[bytes]]) -> None:
        try:
            self._stop_all(children)
        finally:
            from prometheus_client import multiprocess

            for proc in children.values():
                # Its live gauges stop counting.
                multiprocess.mark_process_dead(proc.pid, str(self.metrics_dir))

    def _stop_all(self, children: dict[str, subprocess.Popen[bytes]]) -> None:
        for proc in children.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + CHILD_STOP_GRACE_S
        for name, proc in children.items():
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

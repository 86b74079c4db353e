"""Run a cluster on this machine: nginx in front of nodes on PostgreSQL and Redis.

``make cluster`` runs this (``python -m gamebackend.cluster [--nodes N] [--processes P]``).
It needs no Django settings of its own, so ``REDIS_URL`` and ``DATABASE_URL`` in the
environment (default: this machine's Redis db 0 and a ``gamebackend_cluster`` database)
are simply handed to the nodes. Each node is a ``runnode`` (its server processes and one
Celery worker) on its own port and var directory; all share the database, Redis and the
secrets (from the environment, else generated once into ``GAME_VAR_DIR/cluster``); nginx
listens on ``GAME_BIND`` (default ``127.0.0.1:8000``) with ``ip_hash`` and the WebSocket
upgrade headers. Ctrl-C (or SIGTERM) stops nginx and drains every node. ``--tls`` makes
nginx listen with TLS only, on a self-signed certificate made once under
``GAME_VAR_DIR/cluster/tls`` or on ``--tls-cert``/``--tls-key``; the nodes then run with
``DJANGO_SECURE=1`` (secure cookies, HSTS, ``X-Forwarded-Proto`` trusted).

A node that dies is reported and left down (the others serve its players when they
reconnect through nginx); nginx dying stops the cluster. Each node's process group id
is in ``GAME_VAR_DIR/cluster/<node>.pgid`` (the failover test kills one with it).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from types import FrameType
from typing import Any
from urllib.parse import urlparse

from gamebackend import conf
from gamebackend.management.nginx import Tls, find_nginx, self_signed, write_config

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/gamebackend_cluster"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
NODE_NAMES = "abcdefgh"
# A node migrates nothing (done once here) and answers /healthz within this.
NODE_START_TIMEOUT_S = 60.0
# Each node drains within 10 s of SIGTERM (runnode's own bound); then it is killed.
NODE_STOP_TIMEOUT_S = 12.0
NGINX_STOP_TIMEOUT_S = 5.0
POLL_S = 0.5
SETUP_TIMEOUT_S = 180


class CommandError(Exception):
    """The cluster cannot start; the message says why."""


class Out:
    """Progress lines on stdout, problems on stderr (flushed: this runs under make)."""

    def write(self, text: str) -> None:
        print(text, flush=True)


class Err:
    def write(self, text: str) -> None:
        print(text, file=sys.stderr, flush=True)


class Cluster:
    def __init__(self) -> None:
        self.stdout = Out()
        self.stderr = Err()

    def run(self, **options: Any) -> int:
        count = options["nodes"]
        if not 2 <= count <= len(NODE_NAMES):
            raise CommandError(f"--nodes must be 2-{len(NODE_NAMES)}")
        nginx = find_nginx()
        if nginx is None:
            raise CommandError(
                "nginx is not installed: `apt-get install nginx` (make cluster does it)"
            )
        directory = conf.var_dir() / "cluster"
        directory.mkdir(parents=True, exist_ok=True)
        bind = conf.parse_bind()
        tls = _tls(options, directory, bind.host)
        env = self._cluster_env(directory, bind, tls)
        self.stdout.write("Setting up the database (migrations, operator account)...")
        self._setup(env)
        ports = [bind.port + 1 + i for i in range(count)]
        nodes: dict[str, subprocess.Popen[bytes]] = {}
        stop = threading.Event()

        def on_signal(signum: int, frame: FrameType | None) -> None:
            stop.set()

        signal.signal(signal.SIGINT, on_signal)
        signal.signal(signal.SIGTERM, on_signal)
        nginx_proc: subprocess.Popen[bytes] | None = None
        failed = False
        try:
            for name, port in zip(NODE_NAMES, ports, strict=False):
                nodes[name] = self._start_node(name, port, env, directory, options["processes"])
            for name, port in zip(NODE_NAMES, ports, strict=False):
                self._wait_healthy(name, port, nodes[name], stop)
            config = write_config(
                listen=f"{bind.host}:{bind.port}",
                upstreams=[f"127.0.0.1:{port}" for port in ports],
                directory=directory,
                tls=tls,
            )
            nginx_proc = subprocess.Popen(
                [nginx, "-c", str(config), "-p", str(directory)], start_new_session=True
            )
            http, ws = ("https", "wss") if tls is not None else ("http", "ws")
            self.stdout.write(
                f"Cluster of {count} nodes behind nginx at {http}://{bind.host}:{bind.port}/ "
                f"(players: {ws}://{bind.host}:{bind.port}/ws/game/, console: "
                f"{http}://{bind.host}:{bind.port}/console/); nodes on ports "
                f"{', '.join(map(str, ports))}. Ctrl-C stops everything."
            )
            if tls is not None:
                self.stdout.write(f"TLS certificate: {tls.cert}")
            failed = self._supervise(nodes, nginx_proc, stop)
        finally:
            self._stop(nodes, nginx_proc)
        return 1 if failed else 0

    # -- set-up ----------------------------------------------------------------------------

    def _cluster_env(self, directory: Path, bind: conf.Bind, tls: Tls | None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in ("PORT", "GAME_NODE_ID")}
        env["DJANGO_SETTINGS_MODULE"] = "gamebackend.settings"
        env.setdefault("DATABASE_URL", DEFAULT_DATABASE_URL)
        env.setdefault("REDIS_URL", DEFAULT_REDIS_URL)
        if not env.get("DJANGO_SECRET_KEY") or not env.get("GAME_JWT_SECRET"):
            # Shared by every node; generated once into a 0600 file and reused.
            generated = conf.local_secrets(directory)
            env.setdefault("DJANGO_SECRET_KEY", generated["django_secret_key"])
            env.setdefault("GAME_JWT_SECRET", generated["jwt_secret"])
        # Browsers come to nginx's address, not the nodes'.
        scheme = "https" if tls is not None else "http"
        origins = f"{scheme}://{bind.host}:{bind.port},{scheme}://localhost:{bind.port}"
        env.setdefault("GAME_ALLOWED_ORIGINS", origins)
        if tls is not None:
            # TLS ends at nginx: secure cookies and HSTS, X-Forwarded-Proto trusted; no
            # redirect, since the nodes' own ports (health checks) stay plain HTTP.
            env.setdefault("DJANGO_SECURE", "1")
            env.setdefault("DJANGO_SSL_REDIRECT", "0")
            env.setdefault("DJANGO_CSRF_TRUSTED_ORIGINS", origins)
        # nginx relays every player: its address is a proxy's, not a client's.
        env.setdefault("GAME_TRUSTED_PROXIES", "127.0.0.1/32")
        return env

    def _setup(self, env: dict[str, str]) -> None:
        _ensure_database(env["DATABASE_URL"])
        for command in (["migrate", "--noinput"], ["ensure_operator"]):
            result = subprocess.run(
                [sys.executable, "manage.py", *command],
                cwd=conf.BASE_DIR,
                env=env,
                capture_output=True,
                text=True,
                timeout=SETUP_TIMEOUT_S,
            )
            if result.returncode != 0:
                raise CommandError(f"{' '.join(command)} failed:\n{result.stderr}")
            if command[0] == "ensure_operator":
                self.stdout.write(result.stdout.strip())

    def _start_node(
        self, name: str, port: int, env: dict[str, str], directory: Path, processes: int | None
    ) -> subprocess.Popen[bytes]:
        node_env = {
            **env,
            "PORT": str(port),
            "GAME_NODE_ID": f"game-{name}@127.0.0.1:{port}",
            "GAME_VAR_DIR": str(directory / f"node-{name}"),
        }
        argv = [sys.executable, "manage.py", "runnode", "--skip-setup"]
        if processes is not None:
            argv += ["--processes", str(processes)]
        proc = subprocess.Popen(argv, cwd=conf.BASE_DIR, env=node_env, start_new_session=True)
        (directory / f"node-{name}.pgid").write_text(f"{proc.pid}\n")
        self.stdout.write(f"node {name}: starting on port {port} (pid {proc.pid})")
        return proc

    def _wait_healthy(
        self, name: str, port: int, proc: subprocess.Popen[bytes], stop: threading.Event
    ) -> None:
        deadline = time.monotonic() + NODE_START_TIMEOUT_S
        while not stop.is_set():
            if proc.poll() is not None:
                raise CommandError(f"node {name} exited with {proc.returncode} while starting")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2):
                    self.stdout.write(f"node {name}: up")
                    return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise CommandError(f"node {name} did not answer within {NODE_START_TIMEOUT_S:g}s")
            stop.wait(POLL_S)

    # -- running and stopping ----------------------------------------------------------------

    def _supervise(
        self,
        nodes: dict[str, subprocess.Popen[bytes]],
        nginx_proc: subprocess.Popen[bytes],
        stop: threading.Event,
    ) -> bool:
        """Until Ctrl-C; True when nginx died (the cluster is unreachable)."""
        reported: set[str] = set()
        while not stop.wait(POLL_S):
            if nginx_proc.poll() is not None:
                self.stderr.write(f"nginx exited with {nginx_proc.returncode}; stopping.")
                return True
            for name, proc in nodes.items():
                if proc.poll() is not None and name not in reported:
                    reported.add(name)
                    self.stderr.write(
                        f"node {name} exited with {proc.returncode}; the others carry on "
                        "(its players reconnect to them through nginx)."
                    )
        return False

    def _stop(
        self, nodes: dict[str, subprocess.Popen[bytes]], nginx_proc: subprocess.Popen[bytes] | None
    ) -> None:
        if nginx_proc is not None and nginx_proc.poll() is None:
            nginx_proc.send_signal(signal.SIGQUIT)  # graceful: finish the open requests
        for proc in nodes.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)  # runnode drains its processes
        deadline = time.monotonic() + NODE_STOP_TIMEOUT_S
        for name, proc in nodes.items():
            try:
                proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.stderr.write(f"node {name} did not stop in time; killing it.")
            _kill_group(proc.pid)
        if nginx_proc is not None:
            try:
                nginx_proc.wait(timeout=NGINX_STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                nginx_proc.kill()
                nginx_proc.wait()
        self.stdout.write("Cluster stopped.")


def _kill_group(pgid: int) -> None:
    """Whatever is left of a node's process group (e.g. after its supervisor was killed)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def _ensure_database(url: str) -> None:
    """Create the cluster's PostgreSQL database when it does not exist yet."""
    import psycopg

    parsed = urlparse(url)
    name = parsed.path.lstrip("/")
    admin = parsed._replace(path="/postgres").geturl()
    try:
        with psycopg.connect(admin, autocommit=True) as conn:
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (name,)
            ).fetchone()
            if not exists:
                conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.Error as exc:
        raise CommandError(f"PostgreSQL at {parsed.hostname}:{parsed.port} failed: {exc}") from exc


def _tls(options: dict[str, Any], directory: Path, host: str) -> Tls | None:
    cert, key = options.get("tls_cert"), options.get("tls_key")
    if (cert is None) != (key is None):
        raise CommandError("--tls-cert and --tls-key go together")
    if cert is not None and key is not None:
        for path in (cert, key):
            if not Path(path).is_file():
                raise CommandError(f"{path}: no such file")
        return Tls(cert=Path(cert).resolve(), key=Path(key).resolve())
    if not options.get("tls"):
        return None
    try:
        return self_signed(directory, host)
    except (OSError, subprocess.SubprocessError) as exc:
        raise CommandError(f"making a self-signed certificate with openssl failed: {exc}") from exc


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m gamebackend.cluster", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--nodes", type=int, default=2, help="nodes behind nginx (2-8)")
    parser.add_argument(
        "--processes", type=int, default=None, help="server processes per node (runnode)"
    )
    parser.add_argument(
        "--tls",
        action="store_true",
        help="nginx listens with TLS (a self-signed certificate unless --tls-cert is given)",
    )
    parser.add_argument("--tls-cert", help="PEM certificate (chain) for nginx; implies --tls")
    parser.add_argument("--tls-key", help="its PEM private key")
    options = vars(parser.parse_args(argv))
    try:
        return Cluster().run(**options)
    except CommandError as exc:
        print(f"cluster: {exc}", file=sys.stderr, flush=True)
        return 2


if __name__ == "__main__":
    sys.exit(main())

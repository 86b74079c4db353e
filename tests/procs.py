"""Helpers for tests that run real processes: a node (Daphne + Celery worker), a worker."""

from __future__ import annotations

import http.cookiejar
import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# A fresh node migrates, starts two processes and answers /readyz well within this.
NODE_READY_TIMEOUT_S = 90.0
# The supervisor must stop both children within 10 s of SIGTERM.
NODE_STOP_TIMEOUT_S = 10.0
HTTP_TIMEOUT_S = 5.0
POLL_INTERVAL_S = 0.2
ADMIN_PASSWORD = "test-Operator-pass-7319"
# Settings that must not leak from the developer's shell into a child's profile.
PROFILE_VARS = ("DATABASE_URL", "REDIS_URL", "DJANGO_SECRET_KEY", "GAME_JWT_SECRET", "PORT")


# Servers that tests start listen on ports below the kernel's ephemeral range: a port the
# kernel handed out (bind to 0) and that was closed again can be taken by any outgoing
# connection (to Redis, PostgreSQL...) of the test processes running side by side before
# the server binds it; ports below that range are never handed to outgoing connections.
LISTEN_PORT_LOW = 20_000
PORT_TRIES = 200


def ephemeral_low() -> int:
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32_768  # Linux's default


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port(count: int = 1) -> int:
    """A port nothing listens on, with the ``count - 1`` ports after it free too (e.g. a
    cluster's nginx and its nodes), chosen at random below the ephemeral range."""
    high = ephemeral_low() - count
    for _ in range(PORT_TRIES):
        base = random.randrange(LISTEN_PORT_LOW, high)
        if all(_bindable(base + i) for i in range(count)):
            return base
    raise AssertionError(f"no {count} free ports in a row below {high + count}")


def child_env(var_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in PROFILE_VARS}
    env.update(
        DJANGO_SETTINGS_MODULE="gamebackend.settings",
        GAME_VAR_DIR=str(var_dir),
        GAME_ADMIN_PASSWORD=ADMIN_PASSWORD,
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


def manage(env: dict[str, str], *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=check,
        timeout=120,
    )


def http_get(url: str) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(url, timeout=HTTP_TIMEOUT_S) as resp:
            body = resp.read()
            status = resp.status
    except urllib.error.HTTPError as exc:
        body, status = exc.read(), exc.code
    try:
        return status, json.loads(body)
    except ValueError:
        return status, body.decode(errors="replace")


def wait_until_ready(base_url: str, proc: subprocess.Popen[str], timeout: float) -> float:
    """Poll /readyz until 200; returns the seconds it took. Fails if the node dies."""
    started = time.monotonic()
    last: Any = None
    while time.monotonic() - started < timeout:
        if proc.poll() is not None:
            raise AssertionError(f"node exited with {proc.returncode} before it was ready")
        try:
            status, last = http_get(f"{base_url}/readyz")
            if status == 200:
                return time.monotonic() - started
        except OSError as exc:
            last = exc
        time.sleep(POLL_INTERVAL_S)
    raise AssertionError(f"/readyz not 200 within {timeout}s; last answer: {last!r}")


def _log_tail(path: Path, lines: int = 60) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


@contextmanager
def running_node(var_dir: Path, **extra: str) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """Start `make run`'s server command on a free port; stop it with SIGTERM afterwards."""
    port = free_port()
    env = child_env(var_dir, PORT=str(port), **extra)
    log_path = var_dir / "node.log"
    var_dir.mkdir(parents=True, exist_ok=True)
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [sys.executable, "manage.py", "runnode"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
    try:
        try:
            wait_until_ready(f"http://127.0.0.1:{port}", proc, NODE_READY_TIMEOUT_S)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n--- node log ---\n{_log_tail(log_path)}") from None
        yield f"http://127.0.0.1:{port}", proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=NODE_STOP_TIMEOUT_S + 5)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def console_opener(base_url: str, username: str, password: str) -> urllib.request.OpenerDirector:
    """A cookie-keeping HTTP client logged into /console/ (as a browser: CSRF + form)."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    with opener.open(f"{base_url}/console/login/", timeout=HTTP_TIMEOUT_S) as resp:
        page = resp.read().decode()
    match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    assert match, "login page has no CSRF token"
    form = urllib.parse.urlencode(
        {
            "csrfmiddlewaretoken": match.group(1),
            "username": username,
            "password": password,
            "next": "/console/",
        }
    ).encode()
    request = urllib.request.Request(
        f"{base_url}/console/login/?next=/console/", data=form, headers={"Referer": base_url}
    )
    with opener.open(request, timeout=HTTP_TIMEOUT_S) as resp:
        assert resp.geturl().endswith("/console/"), resp.geturl()
    return opener


def csrf_token(page: str) -> str:
    match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    assert match, "page has no CSRF token"
    return match.group(1)


def console_login(base_url: str, username: str, password: str) -> str:
    """Log into /console/; returns the index page's HTML."""
    opener = console_opener(base_url, username, password)
    with opener.open(f"{base_url}/console/", timeout=HTTP_TIMEOUT_S) as resp:
        return str(resp.read().decode())


def process_group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


# A busy loop: it never sleeps, so it takes every cycle the scheduler gives it.
_BUSY_LOOP = "while True:\n    pass\n"


@contextmanager
def cpu_hog(procs: int, *, share_with: list[int]) -> Iterator[None]:
    """Start ``procs`` busy-looping processes and pin them and the processes ``share_with``
    to one core, so those processes are starved of CPU while the block runs.

    Pinning makes the load independent of how many cores the machine has. The processes'
    own affinity is restored afterwards.
    """
    core = {min(os.sched_getaffinity(0))}
    saved = {pid: os.sched_getaffinity(pid) for pid in share_with}
    hogs = [subprocess.Popen([sys.executable, "-c", _BUSY_LOOP]) for _ in range(procs)]
    try:
        for pid in [*share_with, *(hog.pid for hog in hogs)]:
            os.sched_setaffinity(pid, core)
        yield
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()
        for pid, cpus in saved.items():
            with suppress(ProcessLookupError):  # the node already stopped
                os.sched_setaffinity(pid, cpus)

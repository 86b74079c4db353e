"""Reachability of the real PostgreSQL and Redis the cluster-profile tests use.

Locally a missing service skips the tests that need it; in CI (`GAME_REQUIRE_SERVICES=1`)
it is a failure, never a silent skip.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import socket
import subprocess

import pytest

REDIS_URL = os.environ.get("GAME_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
POSTGRES_URL = os.environ.get("GAME_TEST_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/test")
CONNECT_TIMEOUT_S = 1.0
# Debian's chromium (apt); Playwright drives it, never a downloaded browser build.
CHROMIUM = os.environ.get("GAME_TEST_CHROMIUM", "/usr/bin/chromium")
# Node runs the JavaScript SDK's tests; 20 is the oldest it supports (`node --test`, and a
# WebSocket with --experimental-websocket).
NODE = os.environ.get("GAME_TEST_NODE", "node")
NODE_MIN_MAJOR = 20


def services_required() -> bool:
    return os.environ.get("GAME_REQUIRE_SERVICES") == "1"


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S):
            return True
    except OSError:
        return False


def require_service(name: str, host: str, port: int) -> None:
    """Skip (locally) or fail (in CI) when the service at host:port does not answer."""
    if _reachable(host, port):
        return
    message = f"{name} is not reachable at {host}:{port}"
    if services_required():
        pytest.fail(f"{message} and GAME_REQUIRE_SERVICES=1", pytrace=False)
    pytest.skip(message)


def require_browser() -> str:
    """Debian's chromium and Playwright for Python: skip locally, fail in CI if missing.

    Returns the browser's executable path."""
    missing = []
    if not (os.access(CHROMIUM, os.X_OK) or shutil.which(CHROMIUM)):
        missing.append(f"chromium ({CHROMIUM}; apt-get install chromium)")
    if importlib.util.find_spec("playwright") is None:
        missing.append("playwright (requirements-dev.txt)")
    if missing:
        message = f"browser tests need {' and '.join(missing)}"
        if services_required():
            pytest.fail(f"{message} and GAME_REQUIRE_SERVICES=1", pytrace=False)
        pytest.skip(message)
    return CHROMIUM


def require_node() -> str:
    """Node.js 20+: skip locally, fail in CI if missing. Returns its executable path."""
    path = shutil.which(NODE)
    problem = None
    if path is None:
        problem = f"node ({NODE}; Node.js {NODE_MIN_MAJOR}+)"
    else:
        version = subprocess.run(
            [path, "--version"], capture_output=True, text=True, check=False, timeout=30
        ).stdout.strip()
        major = version.lstrip("v").split(".")[0]
        if not major.isdigit() or int(major) < NODE_MIN_MAJOR:
            problem = f"Node.js {NODE_MIN_MAJOR}+ (found {version or 'nothing'} at {path})"
    if problem is None:
        assert path is not None
        return path
    message = f"JavaScript SDK tests need {problem}"
    if services_required():
        pytest.fail(f"{message} and GAME_REQUIRE_SERVICES=1", pytrace=False)
    pytest.skip(message)

"""A real node (``python -m gamebackend.server``) for end-to-end gateway tests.

It runs the node's default server (uvicorn) unless the test passes ``GAME_SERVER``.
"""

from __future__ import annotations

import atexit
import json
import os
import secrets
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from gameproto.tickets import mint_ticket
from tests.procs import ROOT, child_env, free_port, http_get, manage

NODE_START_TIMEOUT_S = 30.0
NODE_STOP_TIMEOUT_S = 10.0


@dataclass
class Node:
    port: int
    secret: str
    proc: subprocess.Popen[bytes]
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws/game/"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def ticket(self, player_id: str, **kwargs: object) -> str:
        return mint_ticket(secret=self.secret, sub=player_id, **kwargs)  # type: ignore[arg-type]

    def url(self, player_id: str, **query: object) -> str:
        parts = [f"ticket={self.ticket(player_id)}"] + [f"{k}={v}" for k, v in query.items()]
        return f"{self.ws_url}?{'&'.join(parts)}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def kill(self) -> None:
        """``kill -9``: no drain, nothing flushed after this instant."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=NODE_STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


# Tests open many connections from 127.0.0.1 in quick succession; the shipped per-IP
# connect limit (10/s) is for real players.
TEST_CONNECT_RULE = ("ws.connect", "--scope", "ip", "--rate", "1000", "--burst", "1000")


SQLITE_DB = "db.sqlite3"
# Migrated single-machine databases, made once per test process and copied for each node
# (a migrate is a Django start-up of its own: seconds per node otherwise).
_templates: dict[bool, Path] = {}


def _template_db(with_connect_rule: bool) -> Path:
    """A migrated SQLite database (with the tests' connect rule, or with the shipped rules
    only), checkpointed so the one file holds everything."""
    template = _templates.get(with_connect_rule)
    if template is None:
        directory = Path(tempfile.mkdtemp(prefix="gamebackend-node-template-"))
        atexit.register(shutil.rmtree, directory, True)
        env = child_env(directory)
        manage(env, "migrate", "--noinput")
        if with_connect_rule:
            manage(env, "flowrule", *TEST_CONNECT_RULE)
        template = directory / SQLITE_DB
        with sqlite3.connect(template) as conn:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.close()
        _templates[with_connect_rule] = template
    return template


def _prepare_database(var_dir: Path, env: dict[str, str], rules: list[tuple[str, ...]] | None):
    """Migrate the node's database and set its rules (a copy of a template on SQLite)."""
    if "DATABASE_URL" in env:
        manage(env, "migrate", "--noinput")
        for rule in [TEST_CONNECT_RULE] if rules is None else rules:
            manage(env, "flowrule", *rule)
        return
    shutil.copyfile(_template_db(with_connect_rule=rules is None), var_dir / SQLITE_DB)
    for rule in rules or []:
        manage(env, "flowrule", *rule)


def start_node(
    var_dir: Path,
    *,
    secret: str | None = None,
    rules: list[tuple[str, ...]] | None = None,
    env: dict[str, str] | None = None,
    generated_secret: bool = False,
) -> Node:
    """A node on a free port. ``generated_secret``: as a fresh single machine, with no
    secret in the environment (the node generates ``var/secrets.json``)."""
    extra = dict(env or {})
    from_env = extra.pop("GAME_JWT_SECRET", None)
    port = free_port()
    if generated_secret:
        node_env = child_env(var_dir, PORT=str(port), **extra)
    else:
        secret = secret or from_env or secrets.token_urlsafe(32)
        node_env = child_env(var_dir, PORT=str(port), GAME_JWT_SECRET=secret, **extra)
    var_dir.mkdir(parents=True, exist_ok=True)
    if generated_secret:
        # As a fresh single machine: its own migrate generates var/secrets.json.
        manage(node_env, "migrate", "--noinput")
        for rule in [TEST_CONNECT_RULE] if rules is None else rules:
            manage(node_env, "flowrule", *rule)
        secret = json.loads((var_dir / "secrets.json").read_text())["jwt_secret"]
    else:
        _prepare_database(var_dir, node_env, rules)
    assert secret is not None
    log_path = var_dir / "server.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gamebackend.server"],
            cwd=ROOT,
            env=node_env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    node = Node(port=port, secret=secret, proc=proc, log_path=log_path, env=node_env)
    _wait_up(node)
    return node


def restart_node(node: Node) -> Node:
    """The same node (port, var directory, database, secret) started again after it
    stopped or was killed."""
    assert node.proc.poll() is not None, "stop or kill the node first"
    with node.log_path.open("ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gamebackend.server"],
            cwd=ROOT,
            env=node.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    node.proc = proc
    _wait_up(node)
    return node


def _wait_up(node: Node) -> None:
    proc = node.proc
    deadline = time.monotonic() + NODE_START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"node exited early:\n{node.log()}")
        try:
            if http_get(f"{node.http_url}/healthz")[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    node.stop()
    raise AssertionError(f"node not up within {NODE_START_TIMEOUT_S}s:\n{node.log()}")


NodeFactory = Callable[..., Node]


@pytest.fixture
def node_factory(tmp_path: Path) -> Iterator[NodeFactory]:
    nodes: list[Node] = []

    def factory(
        rules: list[tuple[str, ...]] | None = None,
        secret: str | None = None,
        generated_secret: bool = False,
        **extra: str,
    ) -> Node:
        """A node started with ``extra`` env; pass another node's ``secret`` to pair them."""
        node = start_node(
            tmp_path / f"node{len(nodes)}",
            secret=secret,
            rules=rules,
            env=extra,
            generated_secret=generated_secret,
        )
        nodes.append(node)
        return node

    yield factory
    for node in nodes:
        node.stop()


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    """One shared node with a short heartbeat, for tests that don't stop it."""
    n = start_node(
        tmp_path_factory.mktemp("gateway") / "var",
        env={
            "GAME_HEARTBEAT_S": os.environ.get("GAME_TEST_HEARTBEAT_S", "0.6"),
            "GAME_OUTBOX_MAX": "64",
            "GAME_RESUME_GRACE_S": "30",
        },
    )
    yield n
    n.stop()

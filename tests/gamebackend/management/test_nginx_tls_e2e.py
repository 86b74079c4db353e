"""``make cluster CLUSTER_ARGS=--tls``'s front: Debian's nginx with TLS before a real node.

The configuration ``gamebackend.cluster`` writes (``render_config`` with a ``Tls``) and its
self-signed certificate, served by a real nginx in front of the shared test node: a
player connects over ``wss://`` and plays, HTTPS reaches the node, plain HTTP on the TLS
port does not, and the key file is private.
"""

from __future__ import annotations

import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from gamebackend.management.nginx import Tls, find_nginx, render_config, self_signed, write_config
from tests.gateway.wsclient import Raw
from tests.nodes import Node
from tests.procs import free_port
from tests.services import services_required

pytestmark = pytest.mark.slow

NGINX_READY_TIMEOUT_S = 10.0
NGINX_STOP_TIMEOUT_S = 5.0


def test_the_config_listens_with_tls_only_when_given_a_certificate(tmp_path: Path) -> None:
    plain = render_config(listen="127.0.0.1:8000", upstreams=["127.0.0.1:8001"], directory=tmp_path)
    assert "listen 127.0.0.1:8000;" in plain
    assert "ssl_certificate" not in plain
    tls = Tls(cert=tmp_path / "c.pem", key=tmp_path / "k.pem")
    secure = render_config(
        listen="127.0.0.1:8000", upstreams=["127.0.0.1:8001"], directory=tmp_path, tls=tls
    )
    assert "listen 127.0.0.1:8000 ssl;" in secure
    assert f"ssl_certificate {tls.cert};" in secure
    assert f"ssl_certificate_key {tls.key};" in secure


@pytest.fixture
def tls_front(tmp_path: Path, node: Node) -> Iterator[tuple[int, Tls]]:
    nginx = find_nginx()
    if nginx is None:
        if services_required():
            pytest.fail("nginx is not installed (.ci/run installs it)", pytrace=False)
        pytest.skip("nginx is not installed")
    tls = self_signed(tmp_path, "127.0.0.1")
    port = free_port()
    config = write_config(
        listen=f"127.0.0.1:{port}",
        upstreams=[f"127.0.0.1:{node.port}"],
        directory=tmp_path,
        tls=tls,
    )
    proc = subprocess.Popen(
        [nginx, "-c", str(config), "-p", str(tmp_path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        wait_listening(port, proc)
        yield port, tls
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=NGINX_STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def wait_listening(port: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + NGINX_READY_TIMEOUT_S
    while True:
        if proc.poll() is not None:
            raise AssertionError(f"nginx exited: {proc.stderr.read() if proc.stderr else ''!r}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            assert time.monotonic() < deadline, "nginx did not listen"
            time.sleep(0.1)


def trusting(tls: Tls) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(tls.cert))


async def test_a_player_plays_over_wss_through_nginx(
    node: Node, tls_front: tuple[int, Tls]
) -> None:
    port, tls = tls_front
    ticket = node.ticket("tls-player")
    raw = await Raw.open(f"wss://127.0.0.1:{port}/ws/game/?ticket={ticket}", ssl=trusting(tls))
    welcome = await raw.recv()
    assert welcome["type"] == "welcome"
    reply = await raw.request({"type": "move", "x": 3, "y": 4, "id": 1})
    assert (reply["type"], reply["x"], reply["y"]) == ("state", 3, 4)
    await raw.close()


def test_https_reaches_the_node_and_plain_http_on_the_tls_port_does_not(
    tls_front: tuple[int, Tls],
) -> None:
    port, tls = tls_front
    with urllib.request.urlopen(
        f"https://127.0.0.1:{port}/healthz", context=trusting(tls), timeout=5
    ) as resp:
        assert resp.status == 200
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5)
    assert refused.value.code == 400  # nginx: "The plain HTTP request was sent to HTTPS port"
    assert tls.key.stat().st_mode & 0o077 == 0

"""Per-IP limits and the console lockout key on the client behind a trusted proxy, and on
the TCP peer otherwise (a spoofed X-Forwarded-For changes nothing), through real nodes."""

from __future__ import annotations

import http.cookiejar
import json
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator

import pytest
from websockets.exceptions import ConnectionClosed

from tests.gateway.wsclient import Raw
from tests.nodes import Node, start_node
from tests.procs import ADMIN_PASSWORD, HTTP_TIMEOUT_S, csrf_token, manage

pytestmark = pytest.mark.slow

# Two of each per client address, then nothing for minutes: the third attempt is refused.
PER_IP_BURST = 2
STRICT_RULES: list[tuple[str, ...]] = [
    (resource, "--scope", "ip", "--rate", "0.01", "--burst", str(PER_IP_BURST))
    for resource in ("ws.connect", "http.auth.guest")
]
LOGIN_FAILURE_LIMIT = 5  # the shipped GAME_LOGIN_FAILURE_LIMIT


@pytest.fixture(scope="module", params=["trusted", "untrusted"])
def proxied_node(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, Node]]:
    """A node behind "the proxy" at 127.0.0.1 (every test connection comes from there):
    trusted (``GAME_TRUSTED_PROXIES``) or not configured at all."""
    env = {"GAME_TRUSTED_PROXIES": "127.0.0.0/8,::1"} if request.param == "trusted" else {}
    node = start_node(tmp_path_factory.mktemp(request.param) / "var", rules=STRICT_RULES, env=env)
    manage(node.env, "ensure_operator")
    yield request.param, node
    node.stop()


async def connect_status(node: Node, client_ip: str) -> str:
    """``welcome`` or the close code of an upgrade made for ``client_ip`` by the proxy."""
    raw = await Raw.open(
        node.url(f"ca{uuid.uuid4().hex[:10]}"), additional_headers={"X-Forwarded-For": client_ip}
    )
    try:
        return str((await raw.recv())["type"])
    except ConnectionClosed as exc:
        return str(exc.rcvd.code if exc.rcvd else "dropped")
    finally:
        await raw.close()


def guest_status(node: Node, client_ip: str) -> int:
    request = urllib.request.Request(
        f"{node.http_url}/api/auth/guest", data=b"{}", method="POST",
        headers={"Content-Type": "application/json", "X-Forwarded-For": client_ip},
    )  # fmt: skip
    try:
        with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT_S) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        json.loads(exc.read())  # errors are JSON
        return int(exc.code)


def console_login(node: Node, password: str, client_ip: str) -> str:
    """Log into the console as a browser behind the proxy: ``ok`` or the HTTP status."""
    opener = urllib.request.build_opener(
        urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
    )
    headers = {"X-Forwarded-For": client_ip, "Referer": node.http_url}
    login_url = f"{node.http_url}/console/login/?next=/console/"
    with opener.open(
        urllib.request.Request(login_url, headers=headers), timeout=HTTP_TIMEOUT_S
    ) as resp:
        token = csrf_token(resp.read().decode())
    form = {"csrfmiddlewaretoken": token, "username": "operator", "password": password}
    request = urllib.request.Request(
        login_url, data=urllib.parse.urlencode(form).encode(), headers=headers
    )
    try:
        with opener.open(request, timeout=HTTP_TIMEOUT_S) as resp:
            landed = urllib.parse.urlparse(resp.geturl()).path
            return "ok" if landed == "/console/" else str(resp.status)
    except urllib.error.HTTPError as exc:
        return str(exc.code)


async def test_websocket_connect_limit_per_client(proxied_node: tuple[str, Node]) -> None:
    mode, node = proxied_node
    # The client forges hops on the left; only the proxy's own entry (rightmost) counts.
    for _ in range(PER_IP_BURST):
        assert await connect_status(node, "192.0.2.1, 203.0.113.10") == "welcome"
    assert await connect_status(node, "192.0.2.2, 203.0.113.10") == "4429"
    # Another player behind the same proxy: its own bucket when the proxy is trusted; the
    # shared (peer) bucket when the header is only a claim.
    expected = "welcome" if mode == "trusted" else "4429"
    assert await connect_status(node, "203.0.113.11") == expected


def test_http_api_limit_per_client(proxied_node: tuple[str, Node]) -> None:
    mode, node = proxied_node
    assert [guest_status(node, "203.0.113.20") for _ in range(PER_IP_BURST + 1)] == [
        201, 201, 429,
    ]  # fmt: skip
    assert guest_status(node, "203.0.113.21") == (201 if mode == "trusted" else 429)


def test_console_lockout_per_client(proxied_node: tuple[str, Node]) -> None:
    mode, node = proxied_node
    attempts = [console_login(node, "wrong", "203.0.113.30") for _ in range(LOGIN_FAILURE_LIMIT)]
    # The form again, until the last failure locks the account out for this address.
    assert attempts == ["200"] * (LOGIN_FAILURE_LIMIT - 1) + ["429"]
    assert console_login(node, ADMIN_PASSWORD, "203.0.113.30") == "429"  # locked out
    # The operator elsewhere: locked out too only when everyone looks like the proxy.
    expected = "ok" if mode == "trusted" else "429"
    assert console_login(node, ADMIN_PASSWORD, "198.51.100.31") == expected

"""The player auth API against real nodes: identity, refresh sessions, lockout, JSON errors."""

from __future__ import annotations

import http.client
import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.gateway.wsclient import Raw
from tests.nodes import Node, NodeFactory, start_node

pytestmark = pytest.mark.slow

PASSWORD = "tall-Lantern-river-42"
ENDPOINTS = ("guest", "device", "register", "login", "refresh", "logout", "ticket")
# This module's requests all come from 127.0.0.1, faster than the shipped per-address
# limits allow; the limits have their own test (test_the_auth_api_is_rate_limited...).
NO_LIMITS = {"GAME_RATE_LIMITS": "0"}
FAILURE_LIMIT = 3


@pytest.fixture(scope="module")
def auth_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    node = start_node(
        tmp_path_factory.mktemp("auth") / "var",
        rules=[],
        env={**NO_LIMITS, "GAME_PLAYER_LOGIN_FAILURE_LIMIT": str(FAILURE_LIMIT)},
    )
    yield node
    node.stop()


class Answer:
    def __init__(self, status: int, headers: http.client.HTTPMessage, raw: bytes) -> None:
        self.status = status
        self.headers = headers
        self.raw = raw

    @property
    def json(self) -> Any:
        assert self.headers["Content-Type"] == "application/json", self.raw
        return json.loads(self.raw)

    @property
    def error(self) -> dict[str, Any]:
        return dict(self.json["error"])


def call(
    node: Node,
    path: str,
    body: Any = None,
    *,
    method: str = "POST",
    raw: bytes | None = None,
    source: str = "127.0.0.1",
) -> Answer:
    conn = http.client.HTTPConnection(
        "127.0.0.1", node.port, timeout=10, source_address=(source, 0)
    )
    try:
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        conn.request(method, path, body=data, headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        return Answer(resp.status, resp.headers, resp.read())
    finally:
        conn.close()


def device_id() -> str:
    return f"device-{uuid.uuid4().hex}"


def username() -> str:
    return f"u{uuid.uuid4().hex[:12]}"


def assert_login(answer: Answer, status: int) -> dict[str, Any]:
    assert answer.status == status, answer.raw
    body = answer.json
    assert set(body) == {
        "player_id", "ticket", "expires_in", "refresh_token", "refresh_expires_in",
    }  # fmt: skip
    assert body["expires_in"] == 30
    assert body["refresh_expires_in"] == 30 * 86400
    assert answer.headers["Cache-Control"] == "no-store"
    return dict(body)


async def welcome_of(node: Node, ticket: str) -> dict[str, Any]:
    raw = await Raw.open(f"{node.ws_url}?ticket={ticket}")
    try:
        welcome = await raw.recv()
        assert welcome["type"] == "welcome"
        return dict(welcome)
    finally:
        await raw.close()


# --- identity -------------------------------------------------------------------------------


async def test_a_device_comes_back_as_the_same_player(auth_node: Node) -> None:
    device = device_id()
    first = assert_login(call(auth_node, "/api/auth/device", {"device_id": device}), 200)
    again = assert_login(call(auth_node, "/api/auth/device", {"device_id": device}), 200)
    other = assert_login(call(auth_node, "/api/auth/device", {"device_id": device_id()}), 200)
    assert first["player_id"] == again["player_id"] != other["player_id"]
    welcome = await welcome_of(auth_node, again["ticket"])
    assert welcome["player_id"] == first["player_id"]


async def test_register_and_log_in_with_a_password(auth_node: Node) -> None:
    name = username()
    registered = assert_login(
        call(auth_node, "/api/auth/register", {"username": name, "password": PASSWORD}), 201
    )
    logged_in = assert_login(
        call(auth_node, "/api/auth/login", {"username": name.upper(), "password": PASSWORD}), 200
    )
    assert logged_in["player_id"] == registered["player_id"]
    assert (await welcome_of(auth_node, logged_in["ticket"]))["player_id"] == logged_in["player_id"]

    taken = call(auth_node, "/api/auth/register", {"username": name, "password": PASSWORD})
    assert taken.status == 409
    assert taken.error == {
        "code": "username_taken", "message": "this username is taken", "field": "username",
    }  # fmt: skip
    for creds in (
        {"username": name, "password": "x" + PASSWORD},
        {"username": username(), "password": PASSWORD},
    ):
        wrong = call(auth_node, "/api/auth/login", creds)
        assert wrong.status == 401
        assert wrong.error["code"] == "bad_credentials"


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("device", {}, "device_id"),
        ("device", {"device_id": "short"}, "device_id"),
        ("device", {"device_id": "x" * 129}, "device_id"),
        ("device", {"device_id": 1234567890123}, "device_id"),
        ("register", {"username": "ab", "password": PASSWORD}, "username"),
        ("register", {"username": "no spaces", "password": PASSWORD}, "username"),
        ("register", {"username": "fine_name", "password": "password"}, "password"),
        ("register", {"username": "fine_name", "password": "fine_name1"}, "password"),
        ("register", {"username": "fine_name"}, "password"),
        ("login", {"password": PASSWORD}, "username"),
        ("refresh", {}, "refresh_token"),
        ("guest", {"name": 5}, "name"),
        ("guest", {"name": "n" * 33}, "name"),
    ],
)
def test_invalid_fields_are_named(auth_node: Node, path: str, body: Any, field: str) -> None:
    answer = call(auth_node, f"/api/auth/{path}", body)
    assert answer.status == 400
    assert answer.error["code"] == "invalid"
    assert answer.error["field"] == field
    assert answer.error["message"]


# --- refresh tokens -------------------------------------------------------------------------


async def test_refresh_rotates_and_spent_tokens_are_refused(auth_node: Node) -> None:
    login = assert_login(call(auth_node, "/api/auth/device", {"device_id": device_id()}), 200)
    fresh = assert_login(
        call(auth_node, "/api/auth/refresh", {"refresh_token": login["refresh_token"]}), 200
    )
    assert fresh["player_id"] == login["player_id"]
    assert fresh["refresh_token"] != login["refresh_token"]
    assert (await welcome_of(auth_node, fresh["ticket"]))["player_id"] == login["player_id"]

    spent = call(auth_node, "/api/auth/refresh", {"refresh_token": login["refresh_token"]})
    assert spent.status == 401
    assert spent.error["code"] == "bad_refresh_token"
    # A spent token came back: the session is ended, its newest token with it.
    newest = call(auth_node, "/api/auth/refresh", {"refresh_token": fresh["refresh_token"]})
    assert newest.status == 401


def test_a_guest_comes_back_with_its_refresh_token(auth_node: Node) -> None:
    guest = assert_login(call(auth_node, "/api/auth/guest", {"name": "Ann"}), 201)
    back = assert_login(
        call(auth_node, "/api/auth/refresh", {"refresh_token": guest["refresh_token"]}), 200
    )
    assert back["player_id"] == guest["player_id"]


def test_logout_ends_the_session(auth_node: Node) -> None:
    login = assert_login(call(auth_node, "/api/auth/device", {"device_id": device_id()}), 200)
    out = call(auth_node, "/api/auth/logout", {"refresh_token": login["refresh_token"]})
    assert out.status == 204
    assert out.raw == b""
    after = call(auth_node, "/api/auth/refresh", {"refresh_token": login["refresh_token"]})
    assert after.status == 401


@pytest.mark.parametrize("token", ["", "garbage", "a" * 16 + "." + "b" * 43])
def test_unknown_refresh_tokens_are_401(auth_node: Node, token: str) -> None:
    answer = call(auth_node, "/api/auth/refresh", {"refresh_token": token})
    assert answer.status == 401
    assert answer.error["code"] == "bad_refresh_token"


# --- lockout and rate limits ----------------------------------------------------------------


def test_repeated_failures_lock_the_username_for_that_address(auth_node: Node) -> None:
    name = username()
    assert_login(
        call(auth_node, "/api/auth/register", {"username": name, "password": PASSWORD}), 201
    )
    wrong = {"username": name, "password": "wrong-" + PASSWORD}
    for _ in range(FAILURE_LIMIT - 1):
        assert call(auth_node, "/api/auth/login", wrong).status == 401
    locked = call(auth_node, "/api/auth/login", wrong)
    assert locked.status == 429
    assert locked.error["code"] == "locked_out"
    assert "locked until" in locked.error["message"]
    lockout_ms = 900 * 1000  # GAME_PLAYER_LOCKOUT_S default
    assert lockout_ms - 10_000 < locked.error["retry_after_ms"] <= lockout_ms
    assert 890 <= int(locked.headers["Retry-After"]) <= 900
    right = {"username": name, "password": PASSWORD}
    still = call(auth_node, "/api/auth/login", right)
    assert still.status == 429
    assert still.error["code"] == "locked_out"
    # The same username from another address is not locked out.
    assert_login(call(auth_node, "/api/auth/login", right, source="127.0.0.2"), 200)


def test_the_auth_api_is_rate_limited_per_address(node_factory: NodeFactory) -> None:
    node = node_factory(
        rules=[("http.auth.refresh", "--scope", "ip", "--rate", "0.1", "--burst", "2")]
    )
    answers = [call(node, "/api/auth/refresh", {"refresh_token": "garbage"}) for _ in range(3)]
    assert [a.status for a in answers] == [401, 401, 429]
    error = answers[2].error
    assert error["code"] == "rate_limited"
    assert error["retry_after_ms"] > 0
    assert int(answers[2].headers["Retry-After"]) >= 1
    # Another address has its own bucket.
    assert call(node, "/api/auth/refresh", {"refresh_token": "x"}, source="127.0.0.3").status == 401


# --- every error is JSON --------------------------------------------------------------------


@pytest.mark.parametrize("name", ENDPOINTS)
@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_wrong_methods_answer_json_405(auth_node: Node, name: str, method: str) -> None:
    # Issue 12 item 5: GET /api/auth/guest answered 405 as an empty text/html page.
    answer = call(auth_node, f"/api/auth/{name}", method=method)
    assert answer.status == 405
    assert answer.headers["Allow"] == "POST"
    assert answer.error["code"] == "method_not_allowed"


@pytest.mark.parametrize("path", ["/api/auth/nope", "/api/auth/guest/", "/api/auth", "/api/auth/"])
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_unknown_auth_paths_answer_json_404(auth_node: Node, path: str, method: str) -> None:
    answer = call(auth_node, path, {} if method == "POST" else None, method=method)
    assert answer.status == 404
    assert answer.error["code"] == "not_found"


@pytest.mark.parametrize("raw", [b"not json", b"[1, 2]", b'"text"', b"\xff\xfe"])
def test_a_body_that_is_not_an_object_is_invalid(auth_node: Node, raw: bytes) -> None:
    answer = call(auth_node, "/api/auth/device", raw=raw)
    assert answer.status == 400
    assert answer.error["code"] == "invalid"


def test_a_body_over_4_kib_is_too_large(auth_node: Node) -> None:
    answer = call(auth_node, "/api/auth/device", {"device_id": "x" * 5000})
    assert answer.status == 413
    assert answer.error["code"] == "too_large"


def test_ticket_for_a_console_user_needs_a_session(auth_node: Node) -> None:
    answer = call(auth_node, "/api/auth/ticket", {})
    assert answer.status == 401
    assert answer.error["code"] == "unauthenticated"


# --- the cluster profile --------------------------------------------------------------------


@pytest.mark.cluster
async def test_players_get_tickets_in_the_cluster_profile(
    node_factory: NodeFactory, cluster_env: dict[str, str]
) -> None:
    node = node_factory(rules=[], **NO_LIMITS, **cluster_env)
    guest = call(node, "/api/auth/guest", {})
    assert guest.status == 404  # guests are off by default here
    assert guest.error["code"] == "not_found"
    device = device_id()
    login = assert_login(call(node, "/api/auth/device", {"device_id": device}), 200)
    assert (await welcome_of(node, login["ticket"]))["player_id"] == login["player_id"]
    again = assert_login(call(node, "/api/auth/device", {"device_id": device}), 200)
    assert again["player_id"] == login["player_id"]
    name = username()
    assert_login(call(node, "/api/auth/register", {"username": name, "password": PASSWORD}), 201)
    logged_in = assert_login(
        call(node, "/api/auth/login", {"username": name, "password": PASSWORD}), 200
    )
    fresh = assert_login(
        call(node, "/api/auth/refresh", {"refresh_token": logged_in["refresh_token"]}), 200
    )
    assert (await welcome_of(node, fresh["ticket"]))["player_id"] == logged_in["player_id"]

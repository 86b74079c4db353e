"""Connect tickets against a real node: every rejection is an HTTP 403 naming its reason."""

from __future__ import annotations

import time
import uuid
from typing import Any

import jwt
import pytest

from tests.gateway.wsclient import Raw, refused, refused_status
from tests.nodes import Node
from tests.procs import http_get

pytestmark = pytest.mark.slow


def claims(**overrides: object) -> dict[str, object]:
    now = int(time.time())
    base: dict[str, object] = {
        "sub": f"p{uuid.uuid4().hex[:10]}",
        "iat": now,
        "exp": now + 30,
        "jti": uuid.uuid4().hex,
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def url_for(node: Node, token: str) -> str:
    return f"{node.ws_url}?ticket={token}"


def signed(node: Node, **overrides: object) -> str:
    return jwt.encode(claims(**overrides), node.secret, algorithm="HS256")


async def test_valid_ticket_is_accepted_and_provisions_the_player(node: Node) -> None:
    raw = await Raw.open(url_for(node, signed(node, sub="newcomer-1")))
    welcome = await raw.recv()
    assert welcome["type"] == "welcome"
    assert welcome["player_id"] == "newcomer-1"
    assert welcome["resumed"] is False
    assert welcome["last_seq"] == 0
    state = await raw.recv()
    assert state == {
        "type": "state", "seq": 1, "player_id": "newcomer-1", "x": 0.0, "y": 0.0, "rev": 0,
    }  # fmt: skip
    await raw.close()


@pytest.mark.parametrize(
    ("make_token", "code"),
    [
        pytest.param(
            lambda n: jwt.encode(claims(), "wrong-secret-" * 3, "HS256"),
            "ticket_bad_signature",
            id="bad-sig",
        ),
        pytest.param(
            lambda n: jwt.encode(claims(), "", algorithm="none"),
            "ticket_bad_algorithm",
            id="alg-none",
        ),
        pytest.param(
            lambda n: jwt.encode(claims(), n.secret, algorithm="HS512"),
            "ticket_bad_algorithm",
            id="alg-hs512",
        ),
        pytest.param(
            lambda n: signed(n, iat=int(time.time()) - 10, exp=int(time.time()) - 1),
            "ticket_expired",
            id="expired",
        ),
        pytest.param(
            # Older than the iat window: its lifetime is longer than any accepted one.
            lambda n: signed(n, iat=int(time.time()) - 45, exp=int(time.time()) + 10),
            "ticket_lifetime_too_long",
            id="iat-too-old",
        ),
        pytest.param(
            lambda n: signed(n, iat=int(time.time()) + 45, exp=int(time.time()) + 50),
            "ticket_stale_iat",
            id="iat-in-future",
        ),
        pytest.param(
            lambda n: signed(n, exp=int(time.time()) + 31),
            "ticket_lifetime_too_long",
            id="lifetime-over-ttl",
        ),
        pytest.param(
            lambda n: signed(n, exp=int(time.time()) + 86400 * 365),
            "ticket_lifetime_too_long",
            id="lifetime-year",
        ),
        pytest.param(lambda n: signed(n, jti=None), "ticket_missing_claim", id="missing-jti"),
        pytest.param(lambda n: signed(n, sub=None), "ticket_missing_claim", id="missing-sub"),
        pytest.param(lambda n: signed(n, iat=None), "ticket_missing_claim", id="missing-iat"),
        pytest.param(lambda n: signed(n, exp=None), "ticket_missing_claim", id="missing-exp"),
        pytest.param(
            lambda n: signed(n, sub="bad id!"), "ticket_malformed_claim", id="malformed-sub"
        ),
        pytest.param(
            lambda n: signed(n, sub="x" * 65), "ticket_malformed_claim", id="sub-too-long"
        ),
        pytest.param(
            lambda n: signed(n, iat="yesterday"), "ticket_malformed_claim", id="malformed-iat"
        ),
        pytest.param(lambda n: "not-a-jwt", "ticket_malformed", id="garbage"),
        pytest.param(lambda n: "", "ticket_malformed", id="empty"),
    ],
)
async def test_bad_tickets_are_refused_before_accept_with_the_reason(
    node: Node, make_token: Any, code: str
) -> None:
    refusal = await refused(url_for(node, make_token(node)))
    assert refusal is not None
    status, body = refusal
    assert status == 403
    # The denial-response body names the reason (docs/PROTOCOL.md, "Refused upgrades").
    assert body["error"]["code"] == code
    assert body["error"]["message"]


async def test_iat_within_the_window_is_accepted_both_ways(node: Node) -> None:
    for skew in (-25, 25):
        iat = int(time.time()) + skew
        token = signed(node, iat=iat, exp=iat + 30)
        assert await refused_status(url_for(node, token)) is None


async def test_a_ticket_is_single_use(node: Node) -> None:
    token = signed(node)
    assert await refused_status(url_for(node, token)) is None
    refusal = await refused(url_for(node, token))
    assert refusal is not None
    assert refusal[0] == 403
    assert refusal[1]["error"]["code"] == "ticket_replayed"


async def test_no_ticket_is_refused(node: Node) -> None:
    assert await refused_status(node.ws_url) == 403


async def test_origin_must_be_allowed_when_present(node: Node) -> None:
    own = f"http://127.0.0.1:{node.port}"
    assert await refused_status(url_for(node, signed(node)), origin=own) is None
    local = f"http://localhost:{node.port}"
    assert await refused_status(url_for(node, signed(node)), origin=local) is None
    refusal = await refused(url_for(node, signed(node)), origin="https://evil.example")
    assert refusal is not None
    assert (refusal[0], refusal[1]["error"]["code"]) == (403, "origin_not_allowed")


async def test_unknown_subprotocol_only_is_refused(node: Node) -> None:
    refusal = await refused(url_for(node, signed(node)), subprotocols=["game.v9.xml"])
    assert refusal is not None
    assert (refusal[0], refusal[1]["error"]["code"]) == (403, "no_supported_subprotocol")


async def test_the_ticket_never_reaches_the_log(node: Node) -> None:
    token = signed(node)
    raw = await Raw.open(url_for(node, token))
    await raw.recv()
    await raw.close()
    assert await refused_status(url_for(node, token)) == 403  # replay, logged as refused
    # Both upgrades are in the access log, with the ticket redacted.
    assert node.log().count("/ws/game/?ticket=[redacted]") >= 2
    assert token not in node.log()
    assert token.split(".")[2] not in node.log()


async def test_guest_api_issues_a_ticket_good_for_expires_in(node: Node) -> None:
    import json
    import urllib.request

    request = urllib.request.Request(
        f"{node.http_url}/api/auth/guest", data=json.dumps({"name": "Ann"}).encode(),
        method="POST", headers={"Content-Type": "application/json"},
    )  # fmt: skip
    with urllib.request.urlopen(request, timeout=5) as resp:
        assert resp.status == 201
        body = json.loads(resp.read())
    assert set(body) == {
        "player_id", "ticket", "expires_in", "refresh_token", "refresh_expires_in",
    }  # fmt: skip
    assert body["expires_in"] == 30
    # The ticket's own claims agree: its lifetime is what the API said, within the window.
    claims = jwt.decode(body["ticket"], options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == body["expires_in"]
    assert claims["exp"] >= time.time() + body["expires_in"] - 1
    raw = await Raw.open(url_for(node, body["ticket"]))
    assert (await raw.recv())["player_id"] == body["player_id"]
    await raw.close()
    status, error = http_get(f"{node.http_url}/api/auth/guest")
    assert status == 405
    assert error["error"]["code"] == "method_not_allowed"

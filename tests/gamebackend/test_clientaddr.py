"""The client address behind trusted proxies (GAME_TRUSTED_PROXIES)."""

from __future__ import annotations

import re
from typing import Any, cast

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import AsyncRequestFactory, RequestFactory

from gamebackend import conf
from gamebackend.clientaddr import (
    MAX_FORWARDED_HOPS,
    client_address,
    request_client_address,
    resolve_client,
)

PROXIES = conf.parse_networks("10.0.0.0/8, 2001:db8:1::/48")


@pytest.mark.parametrize(
    ("peer", "forwarded", "expected"),
    [
        pytest.param("10.0.0.5", ["203.0.113.9"], "203.0.113.9", id="via-proxy"),
        pytest.param("10.0.0.5", [], "10.0.0.5", id="proxy-without-header"),
        pytest.param("198.51.100.1", ["203.0.113.9"], "198.51.100.1", id="untrusted-peer-spoofs"),
        # The client wrote the left part itself; the proxy appended what it saw.
        pytest.param("10.0.0.5", ["1.2.3.4, 203.0.113.9"], "203.0.113.9", id="spoofed-left-hops"),
        pytest.param("10.0.0.5", ["203.0.113.9, 10.1.1.1"], "203.0.113.9", id="proxy-chain"),
        pytest.param("10.0.0.5", ["203.0.113.9", "10.1.1.1"], "203.0.113.9", id="two-headers"),
        pytest.param("10.0.0.5", ["10.9.9.9, 10.1.1.1"], "10.9.9.9", id="all-trusted"),
        pytest.param("10.0.0.5", ["unknown, 10.1.1.1"], "10.1.1.1", id="garbage-hop"),
        pytest.param("10.0.0.5", [""], "10.0.0.5", id="empty-header"),
        pytest.param("10.0.0.5", ["203.0.113.9:4711"], "203.0.113.9", id="v4-with-port"),
        pytest.param("10.0.0.5", ["[2001:db8:9::1]:4711"], "2001:db8:9::1", id="v6-with-port"),
        pytest.param("2001:db8:1::7", ["2001:DB8:9:0::1"], "2001:db8:9::1", id="v6-normalised"),
        pytest.param("::ffff:10.0.0.5", ["203.0.113.9"], "203.0.113.9", id="v4-mapped-peer"),
        pytest.param("10.0.0.5", ["::ffff:203.0.113.9"], "203.0.113.9", id="v4-mapped-hop"),
        pytest.param("", ["203.0.113.9"], "", id="no-peer"),
    ],
)
def test_resolve_client(peer: str, forwarded: list[str], expected: str) -> None:
    assert resolve_client(peer, forwarded, PROXIES) == expected


def test_no_trusted_proxies_ignores_the_header() -> None:
    assert resolve_client("10.0.0.5", ["203.0.113.9"], ()) == "10.0.0.5"


def test_only_the_rightmost_hops_are_looked_at() -> None:
    chain = ", ".join(["203.0.113.9"] + ["10.0.0.1"] * (MAX_FORWARDED_HOPS + 5))
    # Past the limit the walk stops at the last hop it examined (still a trusted proxy).
    assert resolve_client("10.0.0.5", [chain], PROXIES) == "10.0.0.1"


def test_parse_networks() -> None:
    assert [str(n) for n in conf.parse_networks(" 10.1.2.3/8,::1, ,192.0.2.7 ")] == [
        "10.0.0.0/8",
        "::1/128",
        "192.0.2.7/32",
    ]
    assert conf.parse_networks("") == ()
    with pytest.raises(ValueError, match=re.escape("'10.0.0.0/33'")):
        conf.parse_networks("10.0.0.0/33")


def test_a_bad_setting_is_refused_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GAME_TRUSTED_PROXIES", "10.0.0.0/8,proxy.example")
    with pytest.raises(
        ImproperlyConfigured, match=re.escape("GAME_TRUSTED_PROXIES: 'proxy.example'")
    ):
        conf.env_networks("GAME_TRUSTED_PROXIES")


def scope(kind: str, peer: str, *headers: tuple[bytes, bytes]) -> dict[str, Any]:
    return {"type": kind, "client": (peer, 50000), "headers": list(headers)}


@pytest.mark.parametrize("kind", ["http", "websocket"])
def test_both_asgi_scopes_trusted(kind: str, settings: Any) -> None:
    settings.GAME_TRUSTED_PROXIES = PROXIES
    forwarded = (b"x-forwarded-for", b"1.2.3.4, 203.0.113.9")
    assert client_address(scope(kind, "10.0.0.5", forwarded)) == "203.0.113.9"
    assert client_address(scope(kind, "198.51.100.1", forwarded)) == "198.51.100.1"
    assert client_address({"type": kind, "headers": [forwarded]}) == ""


@pytest.mark.parametrize("kind", ["http", "websocket"])
def test_both_asgi_scopes_untrusted(kind: str, settings: Any) -> None:
    settings.GAME_TRUSTED_PROXIES = ()
    forwarded = (b"x-forwarded-for", b"203.0.113.9")
    assert client_address(scope(kind, "10.0.0.5", forwarded)) == "10.0.0.5"


def test_django_requests_asgi_and_not(settings: Any) -> None:
    settings.GAME_TRUSTED_PROXIES = PROXIES
    headers: dict[str, Any] = {
        "REMOTE_ADDR": "10.0.0.5",
        "HTTP_X_FORWARDED_FOR": "1.2.3.4, 203.0.113.9",
    }
    assert request_client_address(RequestFactory().get("/", **headers)) == "203.0.113.9"
    asgi = AsyncRequestFactory().get("/", headers={"X-Forwarded-For": "1.2.3.4, 203.0.113.9"})
    cast(dict[str, Any], asgi.scope)["client"] = ("10.0.0.5", 50000)
    assert request_client_address(asgi) == "203.0.113.9"
    settings.GAME_TRUSTED_PROXIES = ()
    assert request_client_address(RequestFactory().get("/", **headers)) == "10.0.0.5"
    assert request_client_address(asgi) == "10.0.0.5"

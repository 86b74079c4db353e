"""The server's connection guard and log redaction, as pure logic."""

from __future__ import annotations

import ipaddress
import json
import logging

import pytest

from gamebackend.server.guard import ConnectionGuard, trusted_networks
from gamebackend.server.uvicorn_server import RedactTickets


def test_cap_counts_open_connections_per_address() -> None:
    guard = ConnectionGuard(max_per_ip=2, handshake_timeout_s=1.0)
    assert guard.open("10.0.0.1")
    assert guard.open("10.0.0.1")
    assert not guard.open("10.0.0.1")  # third concurrent one: refused, not counted
    assert guard.open("10.0.0.2")  # other addresses are unaffected
    assert guard.open_count("10.0.0.1") == 2
    guard.close("10.0.0.1")
    assert guard.open("10.0.0.1")  # a slot came free
    assert guard.refused == 1


def test_closing_the_last_connection_forgets_the_address() -> None:
    guard = ConnectionGuard(max_per_ip=1, handshake_timeout_s=1.0)
    assert guard.open("10.0.0.1")
    guard.close("10.0.0.1")
    assert guard.open_count("10.0.0.1") == 0
    assert not guard._counts  # no entry per address ever seen: memory stays bounded


def test_trusted_proxies_are_exempt_from_the_cap() -> None:
    guard = ConnectionGuard(
        max_per_ip=1, handshake_timeout_s=1.0, exempt=trusted_networks("10.1.0.0/16, ::1")
    )
    assert all(guard.open("10.1.2.3") for _ in range(5))
    assert all(guard.open("::1") for _ in range(5))
    assert guard.open("10.2.0.1")
    assert not guard.open("10.2.0.1")


def test_trusted_networks_accepts_strings_and_lists() -> None:
    assert trusted_networks("") == []
    assert trusted_networks(["127.0.0.1"]) == [ipaddress.ip_network("127.0.0.1/32")]
    with pytest.raises(ValueError, match="does not appear to be"):
        trusted_networks("not-an-address")


def test_refusal_is_an_http_429_with_a_json_reason() -> None:
    guard = ConnectionGuard(max_per_ip=3, handshake_timeout_s=1.0)
    head, _, body = guard.refusal.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 429 ")
    assert b"connection: close" in head
    assert json.loads(body)["error"]["code"] == "too_many_connections"


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="max_per_ip"):
        ConnectionGuard(max_per_ip=0, handshake_timeout_s=1.0)
    with pytest.raises(ValueError, match="handshake_timeout_s"):
        ConnectionGuard(max_per_ip=1, handshake_timeout_s=0)


def test_log_filter_redacts_tickets_in_paths() -> None:
    record = logging.LogRecord(
        "uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5000", "GET", "/ws/game/?ticket=abc.def.ghi&resume=s1", "1.1", 101),
        None,
    )  # fmt: skip
    assert RedactTickets().filter(record)
    message = record.getMessage()
    assert "abc.def.ghi" not in message
    assert "/ws/game/?ticket=[redacted]&resume=s1" in message

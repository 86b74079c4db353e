"""What ``loadbots`` tells the user to do about the failures a run met."""

from __future__ import annotations

from typing import Any

from gamebackend.loadtest.bots import Config
from gamebackend.loadtest.cli import hints

URL = "ws://127.0.0.1:8000/ws/game/"


def summary(**fields: Any) -> dict[str, Any]:
    return {"connect_failures": {}, "errors": {}, "closes": {}, **fields}


def test_a_clean_run_has_no_hint() -> None:
    assert hints(Config(url=URL, players=5), summary()) == []


def test_rate_limited_closed_loop_bots_are_told_to_use_more_players() -> None:
    [hint] = hints(
        Config(url=URL, players=200, closed_loop=True),
        summary(errors={"rate_limited": 3264}, closes={"4429": 64}),
    )
    assert "rate-limited 3264 requests" in hint
    assert "closed 64 bots that kept hitting it (4429)" in hint
    assert "use more players" in hint
    assert "manage.py flowrule ws.move" in hint


def test_rate_limited_open_loop_bots_are_told_to_lower_the_rate() -> None:
    [hint] = hints(Config(url=URL, players=5, rate=50.0), summary(errors={"rate_limited": 7}))
    assert "rate-limited 7 requests" in hint
    assert "4429" not in hint
    assert "lower --rate" in hint


def test_connections_over_the_per_address_cap_name_the_setting() -> None:
    [hint] = hints(
        Config(url=URL, players=200), summary(connect_failures={"too_many_connections": 136})
    )
    assert "GAME_MAX_CONNS_PER_IP" in hint
    assert "--spread-sources" in hint

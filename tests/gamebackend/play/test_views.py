"""The play page: its markup, the room from the URL, the login it asks for, its assets,
and the Content-Security-Policy it lives under (no inline script or style)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import Client

from console.middleware import CONTENT_SECURITY_POLICY

pytestmark = pytest.mark.django_db


def test_the_page_names_the_room_the_socket_and_the_login(client: Client) -> None:
    response = client.get("/play/?room=duel-7")
    assert response.status_code == 200
    page = response.content.decode()
    assert 'data-room="duel-7"' in page
    assert 'data-ws-url="ws://testserver/ws/game/"' in page
    assert 'data-login="device"' in page
    assert '<canvas id="board"' in page
    assert '<script type="module" src="/static/play/play.js"></script>' in page
    for hud in ("rtt", "tick", "behind", "desync"):
        assert f'id="{hud}"' in page


def test_the_default_room_and_a_guest_where_guests_are_allowed(
    client: Client, settings: Any
) -> None:
    page = client.get("/play/").content.decode()
    assert 'data-room="arena"' in page
    assert "guest=1" in page  # offered: guests are on in this profile
    assert 'data-login="guest"' in client.get("/play/?guest=1").content.decode()
    settings.GAME_ALLOW_GUESTS = False
    page = client.get("/play/?guest=1").content.decode()
    assert 'data-login="device"' in page
    assert "guest=1" not in page


def test_a_bad_room_name_is_refused_with_the_rule(client: Client) -> None:
    response = client.get("/play/", {"room": "<script>x</script>"})
    assert response.status_code == 400
    page = response.content.decode()
    assert "is not a room name" in page
    assert "<script>x" not in page  # escaped
    assert "play.js" not in page  # nothing to play


def test_the_page_lives_under_the_csp_without_inline_code(client: Client) -> None:
    response = client.get("/play/")
    assert response["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    page = response.content.decode()
    assert re.search(r"<script(?![^>]*\bsrc=)", page) is None  # every script is a file
    assert "style=" not in page
    assert "<style" not in page
    assert re.search(r"\son[a-z]+=", page) is None  # no inline event handlers


def test_the_sdk_and_the_page_script_are_served_as_javascript(client: Client) -> None:
    scripts = ("gameclient/index.js", "gameclient/client.js", "play/play.js")
    for path in (f"/static/{name}" for name in scripts):
        response = client.get(path)
        assert response.status_code == 200, path
        assert response["Content-Type"].startswith("text/javascript"), path


def test_only_get_and_head(client: Client) -> None:
    assert client.post("/play/").status_code == 405
    assert client.head("/play/").status_code == 200


def test_the_landing_page_links_it(client: Client) -> None:
    assert 'href="/play/"' in client.get("/").content.decode()

"""The node's landing page, its documents, the console's "View site" and the CSP."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client, override_settings

from console.middleware import CONTENT_SECURITY_POLICY
from tests.procs import ROOT

pytestmark = pytest.mark.django_db


def test_landing_page_links_the_console_the_docs_and_the_game_endpoint(
    client: Client, settings: Any
) -> None:
    response = client.get("/")
    assert response.status_code == 200
    page = response.content.decode()
    assert 'href="/console/"' in page
    assert 'href="/docs/PROTOCOL/"' in page
    assert 'href="/docs/README/"' in page
    assert "Game WebSocket protocol (v1)" in page  # each document by its own title
    assert "ws://testserver/ws/game/?ticket=" in page
    assert "POST /api/auth/guest" in page  # guests are on in this profile
    # The browser play page (gamebackend/play) is served, so it is linked.
    assert 'href="/play/"' in page
    # Built on the site's base template (the footer names the node).
    assert f"Node {settings.GAME_NODE_ID} (single profile)" in page
    assert [t.name for t in response.templates][:2] == [
        "console/landing.html",
        "console/site_base.html",
    ]


@override_settings(ROOT_URLCONF="tests.console.urls_without_play")
def test_the_play_page_is_linked_only_while_it_exists(client: Client) -> None:
    page = client.get("/").content.decode()
    assert "/play/" not in page


def test_documents_are_served_from_the_checkout(client: Client) -> None:
    response = client.get("/docs/PROTOCOL/")
    assert response.status_code == 200
    first_line = (ROOT / "docs" / "PROTOCOL.md").read_text().splitlines()[0]
    assert first_line in response.content.decode()
    assert client.get("/docs/README/").status_code == 200


@pytest.mark.parametrize("path", ["/docs/nope/", "/docs/../settings/", "/docs/.env/"])
def test_only_listed_documents_are_served(client: Client, path: str) -> None:
    assert client.get(path).status_code == 404


def test_view_site_in_the_console_goes_to_the_play_page(client: Client, admin_user: Any) -> None:
    client.force_login(admin_user)
    page = client.get("/console/").content.decode()
    assert '<a href="/play/">View site</a>' in page
    assert client.get("/play/").status_code == 200


@pytest.mark.parametrize("path", ["/", "/docs/FLOW/", "/console/login/", "/console/"])
def test_html_pages_carry_the_content_security_policy(
    client: Client, admin_user: Any, path: str
) -> None:
    if path == "/console/":
        client.force_login(admin_user)
    response = client.get(path)
    assert response.status_code == 200
    policy = response["Content-Security-Policy"]
    assert policy == CONTENT_SECURITY_POLICY
    assert "script-src 'self'" in policy
    assert "unsafe-inline" not in policy
    assert "frame-ancestors 'none'" in policy


def test_json_answers_carry_no_policy(client: Client) -> None:
    assert "Content-Security-Policy" not in client.get("/healthz")

"""Security baseline: console location, login lockout, deploy checks, JSON-only Celery."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from gamebackend import conf
from gamebackend.celery import app as celery_app
from tests.procs import child_env, manage

PASSWORD = "right-Horse-battery-99"


@pytest.fixture
def operator(db):
    return get_user_model().objects.create_superuser("op", "", PASSWORD)


def login(client: Client, password: str, **extra: Any) -> int:
    response = client.post(
        "/console/login/?next=/console/", {"username": "op", "password": password}, **extra
    )
    return response.status_code


def via_proxy(client_ip: str) -> dict[str, Any]:
    """A request through the TLS proxy at 10.0.0.5 for ``client_ip``."""
    return {"REMOTE_ADDR": "10.0.0.5", "HTTP_X_FORWARDED_FOR": client_ip}


def test_console_lives_at_console_not_admin(client: Client) -> None:
    assert client.get("/console/login/").status_code == 200
    assert client.get("/admin/").status_code == 404


def test_operator_logs_in(client: Client, operator) -> None:
    assert login(client, PASSWORD) == 302
    assert client.get("/console/").status_code == 200


def test_login_locks_out_after_repeated_failures(
    client: Client,
    operator,
    settings,
) -> None:
    for _ in range(settings.AXES_FAILURE_LIMIT):
        login(client, "wrong")
    # Even the right password is refused while locked out.
    assert login(client, PASSWORD) == 429
    assert client.get("/console/").status_code == 302


def test_lockout_behind_a_trusted_proxy_is_per_client(client: Client, operator, settings) -> None:
    # Regression: axes keyed on the TCP peer, so behind the proxy one player's wrong
    # passwords locked the operator out from everywhere.
    settings.GAME_TRUSTED_PROXIES = conf.parse_networks("10.0.0.0/8")
    for _ in range(settings.AXES_FAILURE_LIMIT):
        login(client, "wrong", **via_proxy("203.0.113.66"))
    assert login(client, PASSWORD, **via_proxy("203.0.113.66")) == 429
    assert login(Client(), PASSWORD, **via_proxy("198.51.100.7")) == 302


def test_lockout_ignores_forwarded_for_from_untrusted_peers(
    client: Client, operator, settings
) -> None:
    settings.GAME_TRUSTED_PROXIES = ()
    for i in range(settings.AXES_FAILURE_LIMIT):
        # A spoofed header per attempt must not spread the attempts over many "clients".
        login(client, "wrong", **via_proxy(f"203.0.113.{i}"))
    assert login(Client(), PASSWORD, **via_proxy("198.51.100.7")) == 429


def test_celery_accepts_json_only() -> None:
    assert list(celery_app.conf.accept_content) == ["json"]
    assert list(celery_app.conf.result_accept_content) == ["json"]
    assert celery_app.conf.task_serializer == "json"


@pytest.mark.slow
def test_check_deploy_is_clean_in_secure_mode(tmp_path: Path) -> None:
    env = child_env(tmp_path / "var", DJANGO_SECURE="1")
    done = manage(env, "check", "--deploy", "--fail-level", "WARNING", check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "no issues" in done.stdout


def test_console_pages_name_the_node(client: Client, settings) -> None:
    page = client.get("/console/login/").content.decode()
    assert f"{settings.GAME_NODE_ID} (single profile)" in page

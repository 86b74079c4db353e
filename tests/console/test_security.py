"""Security baseline: console location, login lockout, deploy checks, JSON-only Celery."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from gamebackend.celery import app as celery_app
from tests.procs import child_env, manage

PASSWORD = "right-Horse-battery-99"


@pytest.fixture
def operator(db):
    return get_user_model().objects.create_superuser("op", "", PASSWORD)


def login(client: Client, password: str) -> int:
    response = client.post(
        "/console/login/?next=/console/", {"username": "op", "password": password}
    )
    return response.status_code


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

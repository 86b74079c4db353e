"""The environment selects the profile: checked in fresh interpreters, as a node starts."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.procs import ROOT, child_env

DUMP = """
import json, django
django.setup()
from django.conf import settings
from django.db import connection
from gamebackend.celery import app
with connection.cursor() as c:
    c.execute("PRAGMA journal_mode" if connection.vendor == "sqlite" else "SELECT 'n/a'")
    journal = c.fetchone()[0]
print(json.dumps({
    "profile": settings.GAME_PROFILE,
    "engine": settings.DATABASES["default"]["ENGINE"],
    "journal": journal,
    "layer": settings.CHANNEL_LAYERS["default"]["BACKEND"],
    "broker": app.conf.broker_url,
    "accept": list(app.conf.accept_content),
    "serializer": app.conf.task_serializer,
    "node": settings.GAME_NODE_ID,
    "debug": settings.DEBUG,
    "bind": str(settings.GAME_BIND),
    "secret_len": len(settings.SECRET_KEY),
    "jwt_len": len(settings.GAME_JWT_SECRET),
}))
"""


def load(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", DUMP], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )


def dump(env: dict[str, str]) -> dict[str, object]:
    done = load(env)
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout)
    return result


def test_single_machine_profile_needs_nothing(tmp_path: Path) -> None:
    var_dir = tmp_path / "var"
    got = dump(child_env(var_dir))
    assert got["profile"] == "single"
    assert got["engine"] == "django.db.backends.sqlite3"
    assert got["journal"] == "wal"
    assert got["layer"] == "channels.layers.InMemoryChannelLayer"
    assert got["broker"] == "gamefs://localhost/"
    assert got["accept"] == ["json"]
    assert got["serializer"] == "json"
    assert got["node"] == "game@127.0.0.1:8000"
    assert got["debug"] is False
    assert (var_dir / "db.sqlite3").exists()


def test_local_secrets_are_generated_once_with_mode_0600(tmp_path: Path) -> None:
    var_dir = tmp_path / "var"
    dump(child_env(var_dir))
    secrets_file = var_dir / "secrets.json"
    assert secrets_file.stat().st_mode & 0o777 == 0o600
    first = json.loads(secrets_file.read_text())
    assert len(first["django_secret_key"]) >= 50
    dump(child_env(var_dir))
    assert json.loads(secrets_file.read_text()) == first


def test_environment_secrets_win_and_nothing_is_written(tmp_path: Path) -> None:
    var_dir = tmp_path / "var"
    got = dump(child_env(var_dir, DJANGO_SECRET_KEY="k" * 60, GAME_JWT_SECRET="j" * 40))
    assert got["secret_len"] == 60
    assert got["jwt_len"] == 40
    assert not (var_dir / "secrets.json").exists()


def test_bind_port_and_node_id(tmp_path: Path) -> None:
    got = dump(child_env(tmp_path / "v1", GAME_BIND="0.0.0.0:9000", PORT="9100"))
    assert got["bind"] == "0.0.0.0:9100"
    assert str(got["node"]).startswith("game@")
    assert str(got["node"]).endswith(":9100")
    got = dump(child_env(tmp_path / "v2", GAME_NODE_ID="eu-1@10.0.0.5:8000"))
    assert got["node"] == "eu-1@10.0.0.5:8000"


def test_debug_only_when_asked(tmp_path: Path) -> None:
    assert dump(child_env(tmp_path / "var", DJANGO_DEBUG="1"))["debug"] is True


def test_ticket_lifetime_may_not_outlast_the_iat_window(tmp_path: Path) -> None:
    # Issue 12 item 3: tickets announced 60 s (GAME_TICKET_TTL_S) but were refused after
    # 30 s (GAME_TICKET_MAX_AGE_S); such a configuration is now refused at start.
    done = load(child_env(tmp_path / "var", GAME_TICKET_TTL_S="60"))
    assert done.returncode != 0
    assert "GAME_TICKET_TTL_S (60) must not exceed GAME_TICKET_MAX_AGE_S (30)" in done.stderr
    ok = load(child_env(tmp_path / "var", GAME_TICKET_TTL_S="60", GAME_TICKET_MAX_AGE_S="60"))
    assert ok.returncode == 0, ok.stderr


def test_cluster_profile_refuses_to_run_without_shared_secrets(tmp_path: Path) -> None:
    done = load(child_env(tmp_path / "var", REDIS_URL="redis://127.0.0.1:6379/13"))
    assert done.returncode != 0
    assert "DJANGO_SECRET_KEY must be set in the cluster profile" in done.stderr


def test_bad_setting_value_is_a_clear_error(tmp_path: Path) -> None:
    done = load(child_env(tmp_path / "var", GAME_MAILBOX_SIZE="lots"))
    assert done.returncode != 0
    assert "GAME_MAILBOX_SIZE must be an integer" in done.stderr


@pytest.mark.cluster
def test_cluster_profile_selects_postgres_and_redis(
    tmp_path: Path, cluster_env: dict[str, str]
) -> None:
    got = dump(child_env(tmp_path / "var", **cluster_env))
    assert got["profile"] == "cluster"
    assert got["engine"] == "django.db.backends.postgresql"
    assert got["layer"] == "channels_redis.core.RedisChannelLayer"
    assert str(got["broker"]).startswith("redis://")
    assert got["accept"] == ["json"]

"""/healthz and /readyz in process, with each dependency made to fail in turn."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth import get_user_model
from django.test import AsyncClient, override_settings
from django.utils import timezone

from gamebackend.celery import app as celery_app
from gamebackend.flow.admission import flow_ready, flow_reset
from gamebackend.health.services import worker_heartbeat_record
from gamebackend.health.supervision import RESTARTING, RUNNING, WorkerState, write_worker_state

pytestmark = pytest.mark.django_db(transaction=True)
DEAD_ADDRESS = "redis://127.0.0.1:1/0"  # nothing listens on port 1
ALL_OK = {
    "database": "ok",
    "channel_layer": "ok",
    "broker": "ok",
    "worker": "ok",
    "flow_rules": "ok",
    "flush": "ok",
}


@pytest.fixture(autouse=True)
async def fresh_flow() -> AsyncIterator[None]:
    """/readyz starts the process's rule sync on this test's event loop: stop it after."""
    yield
    await flow_reset()


async def fresh_heartbeat(age_s: float = 0.0) -> None:
    from django.conf import settings

    await sync_to_async(worker_heartbeat_record)(
        node_id=settings.GAME_NODE_ID,
        worker="test-worker",
        answered_at=timezone.now() - timedelta(seconds=age_s),
    )


async def test_healthz_is_ok() -> None:
    response = await AsyncClient().get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": {}}


async def test_readyz_ok_when_every_dependency_answers() -> None:
    await fresh_heartbeat()
    response = await AsyncClient().get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": ALL_OK}


async def test_readyz_503_when_no_worker_answers() -> None:
    # A heartbeat older than the limit, and no worker process to answer a new ping.
    await fresh_heartbeat(age_s=120)
    response = await AsyncClient().get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "fail"
    assert body["checks"]["worker"].startswith("no answer within")
    assert body["checks"]["database"] == "ok"


async def test_readyz_503_names_the_broker_when_it_is_down() -> None:
    await fresh_heartbeat()
    original = celery_app.conf.broker_url
    celery_app.conf.update(broker_url=DEAD_ADDRESS)
    try:
        response = await AsyncClient().get("/readyz")
    finally:
        celery_app.conf.update(broker_url=original)
    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["broker"] != "ok"
    assert checks["database"] == "ok"


async def test_readyz_503_names_the_channel_layer_when_it_is_down() -> None:
    await fresh_heartbeat()
    dead_layer = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [DEAD_ADDRESS]},
        }
    }
    with override_settings(CHANNEL_LAYERS=dead_layer):
        response = await AsyncClient().get("/readyz")
    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["channel_layer"] != "ok"
    assert checks["broker"] == "ok"


async def test_readyz_503_names_a_failing_rule_sync(monkeypatch: pytest.MonkeyPatch) -> None:
    await fresh_heartbeat()
    flow = await flow_ready()

    def database_gone() -> None:
        raise RuntimeError("database went away")

    monkeypatch.setattr("gamebackend.flow.rulesync.flow_rules_load", database_gone)
    with pytest.raises(RuntimeError):
        await flow.sync.sync_now()  # what the periodic pass does
    response = await AsyncClient().get("/readyz")
    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["flow_rules"].startswith("rule sync failing (1 passes; keeping v")
    assert "database went away" in checks["flow_rules"]
    assert checks["database"] == "ok"


async def test_readyz_rejects_other_methods() -> None:
    assert (await AsyncClient().post("/readyz")).status_code == 405


# -- who sees what (issue 12, item 14) -------------------------------------------------------

REMOTE = "203.0.113.9"  # TEST-NET-3: never this machine


class RemoteClient(AsyncClient):
    """A client whose requests come from another machine (the ASGI scope's peer)."""

    def _base_scope(self, **request: Any) -> dict[str, Any]:
        scope: dict[str, Any] = super()._base_scope(**request)  # type: ignore[misc]
        scope["client"] = [REMOTE, 40_000]
        return scope


def remote_client() -> AsyncClient:
    return RemoteClient()


async def test_remote_callers_get_statuses_but_no_error_text() -> None:
    await fresh_heartbeat()
    original = celery_app.conf.broker_url
    celery_app.conf.update(broker_url=DEAD_ADDRESS)
    try:
        remote = await remote_client().get("/readyz")
        local = await AsyncClient().get("/readyz")
    finally:
        celery_app.conf.update(broker_url=original)
    assert remote.status_code == local.status_code == 503
    assert remote.json() == {
        "status": "fail",
        "checks": {**ALL_OK, "broker": "fail"},
    }
    # The same request from this machine names the cause.
    assert local.json()["checks"]["broker"] not in {"ok", "fail"}


async def test_a_local_peer_behind_a_proxy_is_not_local() -> None:
    await fresh_heartbeat(age_s=120)
    response = await AsyncClient().get("/readyz", headers={"X-Forwarded-For": REMOTE})
    assert response.status_code == 503
    assert response.json()["checks"]["worker"] == "fail"


async def test_staff_see_details_from_anywhere_and_players_do_not() -> None:
    await fresh_heartbeat(age_s=120)
    staff = await sync_to_async(get_user_model().objects.create_user)(
        "viewer", password="long-Enough-pass-4711", is_staff=True
    )
    player = await sync_to_async(get_user_model().objects.create_user)(
        "player", password="long-Enough-pass-4711"
    )
    as_staff = remote_client()
    await as_staff.aforce_login(staff)
    as_player = remote_client()
    await as_player.aforce_login(player)
    assert (await as_staff.get("/readyz")).json()["checks"]["worker"].startswith("no answer within")
    assert (await as_player.get("/readyz")).json()["checks"]["worker"] == "fail"


# -- a supervised worker (manage.py runnode) ---------------------------------------------------


def supervised(tmp_path: Path, **fields: Any) -> Any:
    path = tmp_path / "supervisor.json"
    write_worker_state(path, WorkerState(**fields))
    return override_settings(GAME_SUPERVISOR_STATE_FILE=str(path))


async def test_readyz_is_degraded_while_the_supervisor_restarts_the_worker(
    tmp_path: Path,
) -> None:
    await fresh_heartbeat()
    now = time.time()
    state = {
        "state": RESTARTING, "restarts": 2, "down_since": now - 1, "next_start_at": now + 2,
        "last_exit": "killed by SIGKILL",
    }  # fmt: skip
    with supervised(tmp_path, **state):
        local = await AsyncClient().get("/readyz")
        remote = await remote_client().get("/readyz")
    # Still serving players: a load balancer keeps the node, monitoring sees "degraded".
    assert local.status_code == remote.status_code == 200
    body = local.json()
    assert body["status"] == "degraded"
    assert body["checks"]["worker"].startswith("degraded: restarting in ")
    assert "(worker killed by SIGKILL; down 1s; 2 restarts so far)" in body["checks"]["worker"]
    assert body["checks"]["database"] == "ok"
    assert body["worker_supervisor"]["restarts"] == 2
    assert remote.json() == {"status": "degraded", "checks": {**ALL_OK, "worker": "degraded"}}


async def test_a_worker_down_for_longer_than_the_ping_age_fails_readiness(
    tmp_path: Path,
) -> None:
    await fresh_heartbeat()
    now = time.time()
    with (
        override_settings(GAME_WORKER_PING_MAX_AGE_S=5),
        supervised(
            tmp_path, state=RESTARTING, restarts=6, down_since=now - 40, next_start_at=now + 30,
            last_exit="exited with code 1",
        ),
    ):  # fmt: skip
        response = await AsyncClient().get("/readyz")
    assert response.status_code == 503
    worker = response.json()["checks"]["worker"]
    assert worker.startswith("restarting in ")
    assert "(worker exited with code 1; down 40s; 6 restarts so far)" in worker


async def test_a_restarted_worker_counts_only_once_it_answers(tmp_path: Path) -> None:
    # The stored heartbeat is fresh but older than the new worker (its predecessor's), and
    # no worker runs in this test to answer a new ping.
    await fresh_heartbeat(age_s=3)
    now = time.time()
    with supervised(
        tmp_path, state=RUNNING, pid=1, restarts=1, started_at=now - 1, down_since=now - 2,
        last_exit="killed by SIGKILL",
    ):  # fmt: skip
        response = await AsyncClient().get("/readyz")
    assert response.status_code == 200
    assert response.json()["checks"]["worker"].startswith("degraded: restarted, not answering yet")


async def test_readyz_is_degraded_with_the_flush_backlog(tmp_path: Path) -> None:
    from gamebackend.players.flush import FlushBuffer, register_node_buffer
    from gamebackend.players.state import PlayerRecord

    await fresh_heartbeat()
    buffer = FlushBuffer(journal=None, max_entities=3)  # never started: nothing leaves
    register_node_buffer(buffer)
    try:
        buffer.add(PlayerRecord("a", 1.0, 1.0, 1))
        buffer._first_dirty_at = time.monotonic() - 5  # held for 5 s already
        body = (await AsyncClient().get("/readyz")).json()
        assert body["status"] == "degraded"
        assert body["checks"]["flush"].startswith("degraded: flush backlog 1 entities, oldest 5.")
        for pid in ("b", "c"):
            buffer.add(PlayerRecord(pid, 1.0, 1.0, 1))
        body = (await AsyncClient().get("/readyz")).json()
        assert body["checks"]["flush"] == (
            "degraded: flush backlog 3 entities is over GAME_FLUSH_BUFFER_MAX (3); "
            "new players are refused (1013)"
        )
    finally:
        register_node_buffer(None)

"""/healthz and /readyz in process, with each dependency made to fail in turn."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from django.test import AsyncClient, override_settings
from django.utils import timezone

from gamebackend.celery import app as celery_app
from gamebackend.flow.admission import flow_ready, flow_reset
from gamebackend.health.services import worker_heartbeat_record

pytestmark = pytest.mark.django_db(transaction=True)
DEAD_ADDRESS = "redis://127.0.0.1:1/0"  # nothing listens on port 1
ALL_OK = {
    "database": "ok",
    "channel_layer": "ok",
    "broker": "ok",
    "worker": "ok",
    "flow_rules": "ok",
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

"""The console's live pages without a browser: roles (403 for viewers), audited actions,
read-only pages, the lockout page, the dashboard's data."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client, RequestFactory

from console.views import lockout
from gamebackend.audit.models import AuditEntry
from gamebackend.flow import events
from gamebackend.flow.apps import OPERATORS_GROUP, STAFF_VIEWERS_GROUP
from gamebackend.health.models import WorkerHeartbeat
from gamebackend.metrics import series
from gamebackend.moderation.models import PlayerBlock
from tests.console.staff import staff_client

pytestmark = pytest.mark.django_db


@pytest.fixture
def published() -> Any:
    seen: list[dict[str, Any]] = []
    events.listen_locally(seen.append)
    yield seen
    events.stop_listening_locally(seen.append)


@pytest.mark.parametrize(
    ("path", "data"),
    [
        ("/console/sessions/p1/kick/", {"reason": "x"}),
        ("/console/sessions/p1/block/", {"reason": "x", "minutes": "5"}),
        ("/console/sessions/p1/notice/", {"text": "hello"}),
        ("/console/flow/breaker/force_open/", {"resource": "db.flush"}),
        ("/console/rooms/arena/close/", {}),
    ],
)
def test_a_viewer_posting_an_action_gets_403(path: str, data: dict[str, str]) -> None:
    client = staff_client("viewer", STAFF_VIEWERS_GROUP)
    assert client.post(path, data).status_code == 403
    assert not AuditEntry.objects.exists()


def test_actions_are_post_only() -> None:
    client = staff_client("op", OPERATORS_GROUP)
    assert client.get("/console/sessions/p1/kick/").status_code == 405


def test_operator_kick_and_block_is_audited_and_announced(
    published: list[dict[str, Any]], django_capture_on_commit_callbacks: Any
) -> None:
    client = staff_client("op", OPERATORS_GROUP)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/console/sessions/p1/block/", {"reason": "cheating", "minutes": "10"}
        )
    assert response.status_code == 302
    entry = AuditEntry.objects.get()
    assert entry.user is not None
    assert (entry.kind, entry.target, entry.user.username) == ("block", "p1", "op")
    assert entry.detail == {"reason": "cheating"}
    block = PlayerBlock.objects.get(player_id="p1")
    [event] = [e for e in published if e.get("kind") == "console"]
    assert event["action"] == "kick"
    assert event["reason"] == "cheating"
    assert event["block_until"] == block.until.timestamp()


def test_notice_is_audited_and_bounded(
    published: list[dict[str, Any]], django_capture_on_commit_callbacks: Any
) -> None:
    client = staff_client("op", OPERATORS_GROUP)
    with django_capture_on_commit_callbacks(execute=True):
        client.post("/console/sessions/p1/notice/", {"text": "x" * 501})
        client.post("/console/sessions/p1/notice/", {"text": "server restarts soon"})
    assert list(AuditEntry.objects.values_list("kind", "action")) == [("notice", "notice")]
    assert [e["text"] for e in published if e.get("kind") == "console"] == ["server restarts soon"]


def test_breaker_force_is_audited() -> None:
    client = staff_client("op", OPERATORS_GROUP)
    response = client.post("/console/flow/breaker/force_open/", {"resource": "db.flush"})
    assert response.status_code == 302
    assert AuditEntry.objects.get().action == "force_open"


def test_read_only_pages_allow_no_add_change_or_delete(admin_user: Any) -> None:
    client = Client()
    client.force_login(admin_user)
    from django.utils import timezone

    beat = WorkerHeartbeat.objects.create(node_id="n1", worker="w", answered_at=timezone.now())
    assert client.get("/console/health/workerheartbeat/add/").status_code == 403
    url = f"/console/health/workerheartbeat/{beat.pk}/change/"
    assert client.post(url, {"worker": "x"}).status_code == 403
    delete = f"/console/health/workerheartbeat/{beat.pk}/delete/"
    assert client.post(delete, {"post": "yes"}).status_code == 403
    assert client.get("/console/audit/auditentry/add/").status_code == 403
    assert client.get("/console/flow/nodeflowstate/add/").status_code == 403


def test_audit_log_filters_by_user_and_kind(admin_user: Any) -> None:
    client = staff_client("op", OPERATORS_GROUP)
    client.post("/console/flow/breaker/reset/", {"resource": "db.flush"})
    admin = Client()
    admin.force_login(admin_user)
    page = admin.get("/console/audit/auditentry/?kind__exact=breaker").content.decode()
    assert "db.flush" in page
    assert "By user" in page or "by user" in page


def test_lockout_page_says_when_the_account_unlocks() -> None:
    request = RequestFactory().post("/console/login/")
    response = lockout(request)
    assert response.status_code == 429
    body = response.content.decode()
    assert "Account locked" in body
    assert "It unlocks at" in body


def test_the_dashboard_reads_the_nodes_reports(admin_user: Any) -> None:
    store = series.series_store("")
    state = {
        "node": "n-test", "t": 1.0, "connections": 2, "msgs_in_per_s": 1.5,
        "breakers_not_closed": ["db.flush"], "sessions": [{"player_id": "p9", "node": "n-test"}],
    }  # fmt: skip
    store.put_live("n-test", state)
    client = Client()
    client.force_login(admin_user)
    data = client.get("/console/live.json").json()
    assert data["nodes"]["n-test"]["connections"] == 2
    assert "sessions" not in data["nodes"]["n-test"]
    assert data["totals"]["connections"] >= 2
    assert "db.flush (n-test)" in data["totals"]["breakers_not_closed"]
    page = client.get("/console/sessions/?q=p9").content.decode()
    assert "p9" in page


def test_the_session_page_answers_at_once_and_its_script_fetches_the_nodes_answer(
    published: list[dict[str, Any]],
) -> None:
    client = staff_client("viewer", STAFF_VIEWERS_GROUP)
    page = client.get("/console/sessions/p7/").content.decode()
    # The page asked the holding node (over the console's events) and did not wait for it.
    asks = [e for e in published if e.get("action") == "describe"]
    assert [e["player_id"] for e in asks] == ["p7"]
    key = asks[0]["key"]
    assert f'data-describe-url="/console/sessions/p7/describe/?key={key}"' in page
    describe = f"/console/sessions/p7/describe/?key={key}"
    assert client.get(describe).status_code == 204  # no answer yet
    series.series_store("").put_answer(
        key, {"node": "n-test", "player_id": "p7", "state": {"x": 4}, "recent": []}
    )
    live = client.get(describe)
    assert live.status_code == 200
    assert "current state" in live.content.decode()
    assert "{&#x27;x&#x27;: 4}" in live.content.decode()
    assert client.get("/console/sessions/p7/describe/?key=guess").status_code == 204

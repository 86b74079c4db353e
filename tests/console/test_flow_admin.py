"""Console pages for flow control: roles, validation, audit, breaker actions."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from gamebackend.flow.apps import OPERATORS_GROUP, STAFF_VIEWERS_GROUP
from gamebackend.flow.models import BreakerRule, RateLimitRule, RuleChange, RulesVersion
from tests.console.staff import staff_client

pytestmark = pytest.mark.django_db


def form_data(rule: RateLimitRule, **changes: Any) -> dict[str, Any]:
    data = {
        "resource": rule.resource, "scope": rule.scope, "rate": rule.rate, "burst": rule.burst,
        "behavior": rule.behavior, "max_queueing_ms": rule.max_queueing_ms,
        "warm_up_s": rule.warm_up_s, "enabled": "on" if rule.enabled else "",
    }  # fmt: skip
    data.update(changes)
    return data


def test_default_rules_ship_with_the_migrations() -> None:
    rules = {(r.resource, r.scope): (r.rate, r.burst) for r in RateLimitRule.objects.all()}
    assert rules[("ws.move", "player")] == (30, 60)
    assert rules[("ws.state", "player")] == (10, 20)
    assert rules[("ws.connect", "ip")] == (10, 20)
    assert rules[("http.auth.guest", "ip")] == (5, 20)
    assert rules[("ws.control", "player")] == (50, 100)
    assert set(BreakerRule.objects.values_list("resource", flat=True)) >= {
        "db.flush", "celery.enqueue",
    }  # fmt: skip


def test_view_only_staff_can_look_but_not_change() -> None:
    client = staff_client("viewer", STAFF_VIEWERS_GROUP)
    rule = RateLimitRule.objects.get(resource="ws.move")
    url = f"/console/flow/ratelimitrule/{rule.pk}/change/"
    assert client.get("/console/flow/ratelimitrule/").status_code == 200
    assert client.post(url, form_data(rule, rate=1)).status_code == 403
    assert client.post("/console/flow/ratelimitrule/add/", form_data(rule)).status_code == 403
    rule.refresh_from_db()
    assert rule.rate == 30


def test_operator_edit_is_versioned_and_audited() -> None:
    client = staff_client("op", OPERATORS_GROUP)
    rule = RateLimitRule.objects.get(resource="ws.move")
    before = RulesVersion.objects.get(pk=1).version
    url = f"/console/flow/ratelimitrule/{rule.pk}/change/"
    response = client.post(url, form_data(rule, rate=12, burst=24))
    assert response.status_code == 302
    rule.refresh_from_db()
    assert (rule.rate, rule.burst, rule.version) == (12, 24, 2)
    assert RulesVersion.objects.get(pk=1).version == before + 1
    change = RuleChange.objects.get(resource="ws.move")
    assert change.user is not None
    assert change.user.username == "op"
    assert change.old_value is not None
    assert change.new_value is not None
    assert (change.old_value["rate"], change.new_value["rate"]) == (30, 12)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"rate": 0}, "rate"),
        ({"burst": 0.5}, "burst"),
        ({"behavior": "queue", "max_queueing_ms": 0}, "max_queueing_ms"),
        ({"behavior": "warm_up", "warm_up_s": 0}, "warm_up_s"),
        ({"behavior": "explode"}, "behavior"),
        # Issue 12: upper bounds (ws.move was accepted at 1e300/s, burst 1e300).
        ({"rate": 1e300}, "rate"),
        ({"burst": 1e300}, "burst"),
        ({"rate": 1_000_001}, "rate"),
        ({"behavior": "queue", "max_queueing_ms": 60_001}, "max_queueing_ms"),
        ({"behavior": "warm_up", "warm_up_s": 3_601}, "warm_up_s"),
    ],
)
def test_invalid_rules_are_refused_with_the_field_named(
    changes: dict[str, Any], field: str
) -> None:
    client = staff_client("op", OPERATORS_GROUP)
    rule = RateLimitRule.objects.get(resource="ws.move")
    response = client.post(
        f"/console/flow/ratelimitrule/{rule.pk}/change/", form_data(rule, **changes)
    )
    assert response.status_code == 200  # the form again, with errors
    errors = response.context["adminform"].form.errors
    assert field in errors
    assert not RuleChange.objects.exists()


def test_out_of_range_rate_is_refused_with_its_range_shown() -> None:
    client = staff_client("op", OPERATORS_GROUP)
    rule = RateLimitRule.objects.get(resource="ws.move")
    url = f"/console/flow/ratelimitrule/{rule.pk}/change/"
    form = client.get(url).content.decode()
    # The help text says the range before anyone tries.
    assert "tokens per second, 0.0001 to 1,000,000" in form
    assert "bucket capacity, 1 to 1,000,000" in form
    page = client.post(url, form_data(rule, rate=1e300, burst=1e300)).content.decode()
    assert "rate must be in [0.0001, 1,000,000], got 1e+300" in page
    rule.refresh_from_db()
    assert (rule.rate, rule.burst) == (30, 60)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"strategy": "error_count", "threshold": 1e300}, "threshold"),
        ({"min_requests": 2_000_000}, "min_requests"),
        ({"stat_window_s": 1e300}, "stat_window_s"),
        ({"open_s": 1e300}, "open_s"),
        ({"max_rt_ms": 1e300}, "max_rt_ms"),
        ({"half_open_successes": 2_000_000}, "half_open_successes"),
    ],
)
def test_out_of_range_breaker_rules_are_refused(changes: dict[str, Any], field: str) -> None:
    client = staff_client("op", OPERATORS_GROUP)
    breaker = BreakerRule.objects.get(resource="db.flush")
    data = {
        "resource": breaker.resource, "strategy": breaker.strategy,
        "threshold": breaker.threshold, "min_requests": breaker.min_requests,
        "stat_window_s": breaker.stat_window_s, "max_rt_ms": breaker.max_rt_ms,
        "open_s": breaker.open_s, "half_open_probe_ratio": breaker.half_open_probe_ratio,
        "half_open_successes": breaker.half_open_successes, "enabled": "on",
    }  # fmt: skip
    data.update(changes)
    response = client.post(f"/console/flow/breakerrule/{breaker.pk}/change/", data)
    assert response.status_code == 200
    assert field in response.context["adminform"].form.errors
    assert not RuleChange.objects.exists()


def test_breaker_actions_are_audited() -> None:
    client = staff_client("op", OPERATORS_GROUP)
    breaker = BreakerRule.objects.get(resource="db.flush")
    response = client.post(
        "/console/flow/breakerrule/",
        {"action": "force_open", "_selected_action": [breaker.pk]},
    )
    assert response.status_code == 302
    change = RuleChange.objects.get(kind="breaker_action")
    assert (change.resource, change.action) == ("db.flush", "force_open")


def test_viewers_get_no_breaker_actions() -> None:
    client = staff_client("viewer", STAFF_VIEWERS_GROUP)
    breaker = BreakerRule.objects.get(resource="db.flush")
    client.post(
        "/console/flow/breakerrule/", {"action": "force_open", "_selected_action": [breaker.pk]}
    )
    assert not RuleChange.objects.exists()


def test_live_node_view_renders(client: Client, admin_user: Any) -> None:
    from django.utils import timezone

    from gamebackend.flow.models import NodeFlowState

    state = NodeFlowState.objects.create(
        node_id="game@test:1", rules_version=3, updated_at=timezone.now(),
        snapshot={
            "degraded": False,
            "limits": [{"resource": "ws.move", "scope": "player", "allowed": 5, "queued": 0,
                        "rejected": 2, "buckets": 1}],
            "breakers": [{"name": "db.flush", "state": "open", "forced": None,
                          "window": {"total": 10, "errors": 9}, "error_ratio": 0.9,
                          "last_transition": {"from": "closed", "to": "open", "reason": "ratio"}}],
        },
    )  # fmt: skip
    client.force_login(admin_user)
    assert "db.flush" in client.get("/console/flow/nodeflowstate/").content.decode()
    page = client.get(f"/console/flow/nodeflowstate/{state.pk}/change/").content.decode()
    assert "closed -&gt; open: ratio" in page
    assert "90.0%" in page

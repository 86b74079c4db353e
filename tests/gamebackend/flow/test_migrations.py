"""Data migrations of the flow rules, run forwards on a real database."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from gamebackend.flow.selectors import flow_rules_load

pytestmark = pytest.mark.django_db(transaction=True)
SCHEMA_ONLY = [("flow", "0001_initial")]
BEFORE_BOUNDS = [("flow", "0002_default_rules")]
WITH_BOUNDS = [("flow", "0004_bound_rules")]


@pytest.fixture
def executor() -> Iterator[MigrationExecutor]:
    runner = MigrationExecutor(connection)
    # From the schema up, so the shipped rules exist whatever earlier tests left behind.
    runner.migrate(SCHEMA_ONLY)
    runner.loader.build_graph()
    runner.migrate(BEFORE_BOUNDS)
    runner.loader.build_graph()
    yield runner
    # Leave the database at the latest state for the tests after this one.
    runner.loader.build_graph()
    runner.migrate(runner.loader.graph.leaf_nodes())


def test_rules_saved_before_the_bounds_are_clamped_and_audited(
    executor: MigrationExecutor,
) -> None:
    old = executor.loader.project_state(BEFORE_BOUNDS).apps
    old.get_model("flow", "RateLimitRule").objects.filter(resource="ws.move").update(
        rate=1e300, burst=1e300
    )
    old.get_model("flow", "BreakerRule").objects.filter(resource="db.flush").update(open_s=1e300)
    before = old.get_model("flow", "RulesVersion").objects.get(pk=1).version
    executor.loader.build_graph()
    executor.migrate(WITH_BOUNDS)
    new = executor.loader.project_state(WITH_BOUNDS).apps
    move = new.get_model("flow", "RateLimitRule").objects.get(resource="ws.move")
    assert (move.rate, move.burst, move.version) == (1_000_000, 1_000_000, 2)
    flush = new.get_model("flow", "BreakerRule").objects.get(resource="db.flush")
    assert flush.open_s == 3600
    changes = new.get_model("flow", "RuleChange").objects.filter(action="clamped")
    assert {(c.kind, c.resource) for c in changes} == {
        ("rate_limit", "ws.move"),
        ("breaker", "db.flush"),
    }
    assert changes.get(resource="ws.move").old_value["rate"] == 1e300
    # Every node can load the rules again (an unbounded row would fail the whole load).
    version, limits, _ = flow_rules_load()
    # One bump for the auth API's rules (flow 0003), one for the clamping.
    assert version == before + 2
    assert {r.resource: r.rate for r in limits}["ws.move"] == 1_000_000


def test_rules_within_the_bounds_are_left_alone(executor: MigrationExecutor) -> None:
    old = executor.loader.project_state(BEFORE_BOUNDS).apps
    before = old.get_model("flow", "RulesVersion").objects.get(pk=1).version
    executor.migrate(WITH_BOUNDS)
    new = executor.loader.project_state(WITH_BOUNDS).apps
    assert not new.get_model("flow", "RuleChange").objects.exists()
    # Only the auth API's rules (flow 0003) moved the version.
    assert new.get_model("flow", "RulesVersion").objects.get(pk=1).version == before + 1

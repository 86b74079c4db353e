"""``manage.py flowrule``: sets rules like the console, refuses what the console refuses."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from gamebackend.flow.models import RateLimitRule, RuleChange
from tests.procs import child_env, manage

pytestmark = pytest.mark.django_db


def test_sets_a_rule_and_audits_it() -> None:
    out = io.StringIO()
    call_command("flowrule", "ws.move", "--rate", "20", "--burst", "40", stdout=out)
    assert "ws.move per player: saved as v2" in out.getvalue()
    rule = RateLimitRule.objects.get(resource="ws.move", scope="player")
    assert (rule.rate, rule.burst) == (20, 40)
    assert RuleChange.objects.filter(resource="ws.move", action="changed").count() == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        # Issue 12: these were saved (and enforced as "no limit").
        (("--rate", "1e300", "--burst", "1e300"), "rate must be in [0.0001, 1,000,000]"),
        (("--burst", "1e300"), "burst must be in [1, 1,000,000], got 1e+300"),
        (("--rate", "inf"), "rate must be a finite number"),
        (("--behavior", "queue", "--max-queueing-ms", "61000"), "max_queueing_ms must be in"),
        (("--behavior", "warm_up", "--warm-up-s", "1e9"), "warm_up_s must be in"),
    ],
)
def test_out_of_range_values_are_refused(args: tuple[str, ...], message: str) -> None:
    with pytest.raises(CommandError) as refused:
        call_command("flowrule", "ws.move", *args, stdout=io.StringIO())
    assert message in str(refused.value)
    assert refused.value.returncode == 1
    rule = RateLimitRule.objects.get(resource="ws.move", scope="player")
    assert (rule.rate, rule.burst, rule.version) == (30, 60, 1)
    assert not RuleChange.objects.exists()


@pytest.mark.slow
def test_refusal_exits_non_zero_from_the_shell(tmp_path: Path) -> None:
    env = child_env(tmp_path / "var")
    manage(env, "migrate", "--noinput")
    done = manage(env, "flowrule", "ws.move", "--rate", "1e300", "--burst", "1e300", check=False)
    assert done.returncode == 1
    assert "refused: rate must be in [0.0001, 1,000,000], got 1e+300" in done.stderr
    listed = manage(env, "flowrule").stdout
    assert "rate=30/s burst=60" in listed

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from gamebackend.flow.breaker import BreakerRule as BreakerSpec
from gamebackend.flow.bucket import Rule
from gamebackend.flow.models import BreakerRule, NodeFlowState, RateLimitRule, RulesVersion


def rules_version() -> int:
    row = RulesVersion.objects.filter(pk=1).values_list("version", flat=True).first()
    return int(row or 0)


def flow_rules_load() -> tuple[int, list[Rule], list[BreakerSpec]]:
    """The current rules and their version, as the enforcement code takes them."""
    version = rules_version()
    limits = [rule.to_spec() for rule in RateLimitRule.objects.all()]
    breakers = [rule.to_spec() for rule in BreakerRule.objects.all()]
    return version, limits, breakers


# The node id a Celery worker process reports its breakers under: worker.<pid>@<host>.
WORKER_PREFIX = "worker."


def live_node_count(*, within_s: float) -> int:
    since = timezone.now() - timedelta(seconds=within_s)
    # Celery workers report their breakers too (flow/worker.py) but take no share of a
    # cluster rule.
    live = NodeFlowState.objects.filter(updated_at__gte=since)
    return live.exclude(node_id__startswith=WORKER_PREFIX).count()


def node_flow_states(*, within_s: float) -> list[NodeFlowState]:
    """Nodes' and workers' reports (limiter counters, breakers) of the last ``within_s``."""
    since = timezone.now() - timedelta(seconds=within_s)
    return list(NodeFlowState.objects.filter(updated_at__gte=since).order_by("node_id"))

"""Console pages for flow control: rules (inline edit), breaker actions, live node state."""

from __future__ import annotations

import time
from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html, format_html_join

from gamebackend.flow import services
from gamebackend.flow.models import BreakerRule, NodeFlowState, RateLimitRule, RuleChange


class AuditedRuleAdmin(admin.ModelAdmin):
    """Saves and deletes go through the services: validated, versioned, audited, announced."""

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        services.flow_rule_save(rule=obj, user=request.user)

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        services.flow_rule_delete(rule=obj, user=request.user)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        for obj in queryset:
            services.flow_rule_delete(rule=obj, user=request.user)


@admin.register(RateLimitRule)
class RateLimitRuleAdmin(AuditedRuleAdmin):
    list_display = (
        "resource", "scope", "rate", "burst", "behavior", "max_queueing_ms", "warm_up_s",
        "enabled", "version", "updated_at",
    )  # fmt: skip
    list_editable = ("rate", "burst", "behavior", "max_queueing_ms", "warm_up_s", "enabled")
    list_filter = ("scope", "behavior", "enabled")
    search_fields = ("resource",)


@admin.register(BreakerRule)
class BreakerRuleAdmin(AuditedRuleAdmin):
    list_display = (
        "resource", "strategy", "threshold", "min_requests", "stat_window_s", "max_rt_ms",
        "open_s", "half_open_probe_ratio", "half_open_successes", "enabled", "version",
    )  # fmt: skip
    list_editable = (
        "strategy", "threshold", "min_requests", "stat_window_s", "max_rt_ms", "open_s",
        "half_open_probe_ratio", "half_open_successes", "enabled",
    )  # fmt: skip
    search_fields = ("resource",)
    actions = ("force_open", "force_closed", "reset")

    def _command(self, request: HttpRequest, queryset: QuerySet[BreakerRule], action: str) -> None:
        for rule in queryset:
            services.breaker_command(resource=rule.resource, action=action, user=request.user)
        what = action.replace("_", " ")
        self.message_user(
            request, f"{what} sent to every node for {queryset.count()} breakers", messages.SUCCESS
        )

    @admin.action(description="Force open on every node", permissions=["change"])
    def force_open(self, request: HttpRequest, queryset: QuerySet[BreakerRule]) -> None:
        self._command(request, queryset, "force_open")

    @admin.action(description="Force closed on every node", permissions=["change"])
    def force_closed(self, request: HttpRequest, queryset: QuerySet[BreakerRule]) -> None:
        self._command(request, queryset, "force_closed")

    @admin.action(description="Reset on every node", permissions=["change"])
    def reset(self, request: HttpRequest, queryset: QuerySet[BreakerRule]) -> None:
        self._command(request, queryset, "reset")


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(RuleChange)
class RuleChangeAdmin(ReadOnlyAdmin):
    list_display = ("at", "user", "kind", "resource", "action", "old_value", "new_value", "version")
    list_filter = ("kind", "action")
    search_fields = ("resource",)


def _table(headers: tuple[str, ...], rows: list[tuple[Any, ...]]) -> str:
    head = format_html_join("", "<th>{}</th>", ((h,) for h in headers))
    body = format_html_join(
        "", "<tr>{}</tr>",
        ((format_html_join("", "<td>{}</td>", ((c,) for c in row)),) for row in rows),
    )  # fmt: skip
    return format_html("<table><thead><tr>{}</tr></thead><tbody>{}</tbody></table>", head, body)


def _transition(last: dict[str, Any]) -> str:
    if not last or last.get("to") is None:
        return "none since the process started"
    at = last.get("wall_at")
    when = f" at {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime(at))}" if at else ""
    return f"{last.get('from')} -> {last.get('to')}{when}: {last.get('reason')}"


@admin.register(NodeFlowState)
class NodeFlowStateAdmin(ReadOnlyAdmin):
    """Live view: what each node enforces right now (refreshed every few seconds)."""

    list_display = (
        "node_id", "rules_version", "rule_sync", "degraded", "open_breakers", "updated_at",
    )  # fmt: skip
    readonly_fields = ("node_id", "rules_version", "rule_sync", "updated_at", "breakers", "limits")
    fields = readonly_fields

    @admin.display(description="rule sync")
    def rule_sync(self, obj: NodeFlowState) -> str:
        sync = obj.snapshot.get("sync") or {}
        if sync.get("ok", True):
            return "ok"
        return f"FAILING ({sync.get('failures')} passes): {sync.get('error')}"

    @admin.display(boolean=True, description="cluster limits degraded")
    def degraded(self, obj: NodeFlowState) -> bool:
        return bool(obj.snapshot.get("degraded"))

    @admin.display(description="open breakers")
    def open_breakers(self, obj: NodeFlowState) -> str:
        names = [b["name"] for b in obj.snapshot.get("breakers", []) if b.get("state") != "closed"]
        return ", ".join(names) or "-"

    @admin.display(description="breakers")
    def breakers(self, obj: NodeFlowState) -> str:
        rows = [
            (
                b.get("name"), b.get("state"), b.get("forced") or "-",
                b.get("window", {}).get("total"), b.get("window", {}).get("errors"),
                f"{b.get('error_ratio', 0.0):.1%}", _transition(b.get("last_transition") or {}),
            )
            for b in obj.snapshot.get("breakers", [])
        ]  # fmt: skip
        headers = ("breaker", "state", "forced", "window calls", "window errors", "error ratio",
                   "last transition")  # fmt: skip
        return _table(headers, rows)

    @admin.display(description="rate limits")
    def limits(self, obj: NodeFlowState) -> str:
        rows = [
            (c.get("resource"), c.get("scope"), c.get("allowed"), c.get("queued"),
             c.get("rejected"), c.get("buckets"))
            for c in obj.snapshot.get("limits", [])
        ]  # fmt: skip
        return _table(("resource", "scope", "allowed", "queued", "rejected", "buckets"), rows)

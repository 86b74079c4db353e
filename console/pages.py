"""The console's live pages: dashboard data, sessions, rooms, actors, limits and breakers.

They read the nodes' reports (``gamebackend/metrics/series.py``: what each node's own
counters said in the last seconds, and an hour of points) and each app's selectors, and
act through each app's services. Looking needs a staff login (the admin's own check);
acting needs ``audit.operate`` (the ``operators`` group): anyone else gets HTTP 403.
"""

from __future__ import annotations

import secrets
import time
from http import HTTPStatus
from typing import Any, Final

from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseNotAllowed,
    JsonResponse,
)
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import urlencode

from gamebackend.flow import services as flow_services
from gamebackend.flow.enforcement import BREAKER_ACTIONS
from gamebackend.flow.selectors import WORKER_PREFIX, node_flow_states
from gamebackend.health.selectors import worker_heartbeats
from gamebackend.metrics.series import HISTORY_S, series_store
from gamebackend.moderation import services as moderation

OPERATE_PERMISSION: Final = "audit.operate"
# How long the session page (its script) waits for the node that holds the player to
# describe it, and how often it asks.
DESCRIBE_WAIT_S: Final = 3.0
DESCRIBE_POLL_S: Final = 0.15
# ... and for a player no node lists (offline, or beyond a big node's listed sessions).
DESCRIBE_UNLISTED_WAIT_S: Final = 1.0
# Worker reports (breakers) older than this are not shown: that worker is gone.
WORKER_REPORT_STALE_S: Final = 30.0
LIMIT_RATE_WINDOW_S: Final = 60.0
MAX_REASON_CHARS: Final = 120  # a close reason is at most 123 bytes
_LIVE_DROP = ("sessions", "room_list", "limits")
_SUMMED = (
    "connections", "msgs_in_per_s", "msgs_out_per_s", "rooms", "room_members", "flush_backlog",
    "dead_letters", "restarts", "rejected_per_s", "watchdog_warnings",
)  # fmt: skip


def can_operate(user: Any) -> bool:
    return bool(user.is_active and user.is_staff and user.has_perm(OPERATE_PERMISSION))


def require_operator(request: HttpRequest) -> None:
    if not can_operate(request.user):
        raise PermissionDenied("looking only: this account may not act")


def _store() -> Any:
    return series_store(settings.REDIS_URL)


def render_page(
    site: admin.AdminSite, request: HttpRequest, template: str, title: str, **extra: Any
) -> HttpResponse:
    context = {**site.each_context(request), "title": title, **extra}
    return render(request, template, context)


# -- dashboard ------------------------------------------------------------------------------


def _workers() -> list[dict[str, Any]]:
    """Celery workers' own breaker reports (db.flush lives there)."""
    out = []
    for state in node_flow_states(within_s=WORKER_REPORT_STALE_S):
        if not state.node_id.startswith(WORKER_PREFIX):
            continue
        breakers = state.snapshot.get("breakers", [])
        out.append(
            {
                "node": state.node_id,
                "updated_at": state.updated_at.timestamp(),
                "breakers": breakers,
                "breakers_not_closed": [b["name"] for b in breakers if b.get("state") != "closed"],
            }
        )
    return out


def live_json(site: admin.AdminSite, request: HttpRequest) -> JsonResponse:
    """The dashboard's data: every node's live numbers, totals, an hour of points."""
    store = _store()
    now = time.time()
    live = store.live()
    nodes = {
        node: {k: v for k, v in state.items() if k not in _LIVE_DROP}
        for node, state in sorted(live.items())
    }
    totals: dict[str, Any] = dict.fromkeys(_SUMMED, 0)
    for state in nodes.values():
        for key in _SUMMED:
            totals[key] = round(totals[key] + (state.get(key) or 0), 2)
    p99s = [s["latency_p99_ms"] for s in nodes.values() if s.get("latency_p99_ms") is not None]
    totals["latency_p99_ms"] = max(p99s) if p99s else None
    totals["flush_lag_s"] = max((s.get("flush_lag_s") or 0 for s in nodes.values()), default=0)
    workers = _workers()
    totals["breakers_not_closed"] = sorted(
        {f"{b} ({n})" for n, s in nodes.items() for b in s.get("breakers_not_closed", [])}
        | {f"{b} ({w['node']})" for w in workers for b in w["breakers_not_closed"]}
    )
    history = store.history(now - HISTORY_S)
    for points in history.values():
        for point in points:
            point.pop("limits", None)
    return JsonResponse(
        {
            "now": now,
            "nodes": nodes,
            "totals": totals,
            "workers": workers,
            "heartbeats": worker_heartbeats(),
            "history": history,
        }
    )


# -- sessions -------------------------------------------------------------------------------


def _all_sessions() -> list[dict[str, Any]]:
    rows = []
    for state in _store().live().values():
        rows.extend(state.get("sessions", []))
    return rows


def sessions(site: admin.AdminSite, request: HttpRequest) -> HttpResponse:
    query = request.GET.get("q", "").strip()
    node = request.GET.get("node", "")
    live = _store().live()
    rows = _all_sessions()
    if query:
        rows = [r for r in rows if query.lower() in r["player_id"].lower()]
    if node:
        rows = [r for r in rows if r["node"] == node]
    rows.sort(key=lambda r: (r["node"], r["player_id"]))
    return render_page(
        site, request, "console/sessions.html", "Sessions",
        rows=rows, query=query, node=node, nodes=sorted(live),
        totals={n: s.get("sessions_total", 0) for n, s in live.items()},
    )  # fmt: skip


def session_detail(site: admin.AdminSite, request: HttpRequest, player_id: str) -> HttpResponse:
    """The page at once; its script polls ``session_describe`` for the holding node's
    answer (a report round away), so no server thread waits on another process."""
    key = secrets.token_urlsafe(12)
    moderation.player_describe_request(player_id=player_id, key=key)
    listed = any(row["player_id"] == player_id for row in _all_sessions())
    # A player no node lists is most likely offline: do not keep the operator waiting.
    wait_s = DESCRIBE_WAIT_S if listed else DESCRIBE_UNLISTED_WAIT_S
    describe_url = reverse("admin:console_session_describe", args=[player_id])
    return render_page(
        site, request, "console/session_detail.html", f"Player {player_id}",
        player_id=player_id, describe_url=f"{describe_url}?{urlencode({'key': key})}",
        wait_s=wait_s, poll_ms=int(DESCRIBE_POLL_S * 1000), max_reason=MAX_REASON_CHARS,
    )  # fmt: skip


def session_describe(site: admin.AdminSite, request: HttpRequest, player_id: str) -> HttpResponse:
    """The live part of a session's page once its node has answered (HTTP 204 until then)."""
    key = request.GET.get("key", "")
    detail = _store().answer(key) if key else None
    if detail is None:
        return HttpResponse(status=HTTPStatus.NO_CONTENT)
    return render(request, "console/session_live.html", {"detail": detail})


def session_action(
    site: admin.AdminSite, request: HttpRequest, player_id: str, action: str
) -> HttpResponse:
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    require_operator(request)
    reason = request.POST.get("reason", "").strip()[:MAX_REASON_CHARS] or "kicked by an operator"
    try:
        if action == "kick":
            moderation.player_kick(player_id=player_id, reason=reason, by=request.user)
            messages.success(request, f"{player_id} kicked: {reason}")
        elif action == "block":
            minutes = int(request.POST.get("minutes", "0"))
            if minutes < 1:
                raise ValueError("block for at least one minute")
            moderation.player_kick(
                player_id=player_id, reason=reason, by=request.user, block_minutes=minutes
            )
            messages.success(request, f"{player_id} kicked and blocked for {minutes} min")
        elif action == "notice":
            text = request.POST.get("text", "").strip()
            moderation.player_notice(player_id=player_id, text=text, by=request.user)
            messages.success(request, f"message sent to {player_id}")
        else:
            raise Http404("no such action")
    except ValueError as exc:
        messages.error(request, str(exc))
        return redirect(reverse("admin:console_session", args=[player_id]))
    return redirect(reverse("admin:console_sessions"))


# -- rooms and actors -----------------------------------------------------------------------


def rooms(site: admin.AdminSite, request: HttpRequest) -> HttpResponse:
    rows = []
    for node, state in sorted(_store().live().items()):
        for room in state.get("room_list", []):
            rows.append({**room, "node": node})
    wanted = request.GET.get("room", "")
    detail = next((r for r in rows if r.get("room") == wanted), None) if wanted else None
    return render_page(site, request, "console/rooms.html", "Rooms", rows=rows, detail=detail)


def room_action(site: admin.AdminSite, request: HttpRequest, room: str) -> HttpResponse:
    """Close a room (operators): its members leave it and are told why."""
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    require_operator(request)
    moderation.room_close(room_id=room, by=request.user)
    messages.success(request, f"room {room} closed: its members were made to leave")
    return redirect(reverse("admin:console_rooms"))


def _hour_delta(points: list[dict[str, Any]], key: str) -> int:
    values = [int(p.get(key) or 0) for p in points]
    return max(0, values[-1] - values[0]) if len(values) > 1 else 0


def actors(site: admin.AdminSite, request: HttpRequest) -> HttpResponse:
    store = _store()
    history = store.history(time.time() - HISTORY_S)
    rows = []
    for node, state in sorted(store.live().items()):
        points = history.get(node, [])
        rows.append(
            {
                "node": node,
                "actors": state.get("actors"),
                "top": state.get("top_mailboxes", []),
                "restarts": state.get("restarts"),
                "restarts_hour": _hour_delta(points, "restarts"),
                "dead_letters": state.get("dead_letters"),
                "dead_letters_hour": _hour_delta(points, "dead_letters"),
                "watchdog": state.get("watchdog_warnings"),
                "watchdog_hour": _hour_delta(points, "watchdog_warnings"),
            }
        )
    return render_page(site, request, "console/actors.html", "Actors", rows=rows)


# -- rate limits and breakers ---------------------------------------------------------------


def _limit_rates(
    node: str, state: dict[str, Any], points: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Per rule: allowed and rejected per second over the last minute on ``node``."""
    now = float(state.get("t") or time.time())
    old = [p for p in points if p.get("limits") and p["t"] >= now - LIMIT_RATE_WINDOW_S]
    base = old[0] if old else None
    span = max(1.0, now - base["t"]) if base else None
    out = []
    for gate in state.get("limits", []):
        key = f"{gate['resource']}|{gate['scope']}"
        allowed, rejected = int(gate.get("allowed", 0)), int(gate.get("rejected", 0))
        before = (base or {}).get("limits", {}).get(key)
        if before is None or span is None:
            rates = (None, None)
        else:
            rates = (
                round(max(0, allowed - before[0]) / span, 2),
                round(max(0, rejected - before[1]) / span, 2),
            )
        out.append({**gate, "node": node, "allowed_per_s": rates[0], "rejected_per_s": rates[1]})
    return out


def _transition(last: dict[str, Any]) -> dict[str, Any] | None:
    if not last or last.get("to") is None:
        return None
    at = last.get("wall_at")
    return {
        "from": last.get("from"),
        "to": last.get("to"),
        "reason": last.get("reason"),
        "at": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(at)) if at else None,
    }


def flow(site: admin.AdminSite, request: HttpRequest) -> HttpResponse:
    store = _store()
    live = store.live()
    history = store.history(time.time() - LIMIT_RATE_WINDOW_S - 15)
    limits = []
    breakers = []
    for node, state in sorted(live.items()):
        limits.extend(_limit_rates(node, state, history.get(node, [])))
        for b in state.get("breakers", []):
            breakers.append({**b, "node": node, "last": _transition(b.get("last_transition"))})
    for worker in _workers():
        for b in worker["breakers"]:
            breakers.append(
                {**b, "node": worker["node"], "last": _transition(b.get("last_transition"))}
            )
    return render_page(
        site, request, "console/flow.html", "Rate limits and breakers",
        limits=limits, breakers=breakers, actions=sorted(BREAKER_ACTIONS),
    )  # fmt: skip


def breaker_action(site: admin.AdminSite, request: HttpRequest, action: str) -> HttpResponse:
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    require_operator(request)
    if action not in BREAKER_ACTIONS:
        raise Http404("no such breaker action")
    resource = request.POST.get("resource", "").strip()
    if not resource:
        raise Http404("no breaker named")
    flow_services.breaker_command(resource=resource, action=action, user=request.user)
    messages.success(request, f"{action.replace('_', ' ')} sent to every node for {resource}")
    return redirect(reverse("admin:console_flow"))

"""HTTP API for connect tickets: JSON in and out, CSRF-exempt, no cookies needed for guests."""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from gamebackend.clientaddr import request_client_address
from gamebackend.flow.admission import admit
from gamebackend.gateway.services import (
    GUEST_NAME_MAX,
    guest_create,
    player_id_for_user,
    ticket_issue,
)

MAX_BODY_BYTES = 4096
MS_PER_S = 1000


async def _rate_limited(request: HttpRequest, resource: str) -> JsonResponse | None:
    """A 429 when the client IP is over ``resource``'s limit, else None (queued: waited)."""
    decision = await admit(resource, ip=request_client_address(request))
    if decision.rejected:
        response = _error(
            429, "rate_limited", "too many requests", retry_after_ms=decision.retry_after_ms
        )
        response["Retry-After"] = str(max(1, -(-decision.retry_after_ms // MS_PER_S)))
        return response
    return None


def _error(status: int, code: str, message: str, **extra: Any) -> JsonResponse:
    return JsonResponse({"error": {"code": code, "message": message, **extra}}, status=status)


def _json_body(request: HttpRequest) -> dict[str, Any] | None:
    if not request.body:
        return {}
    if len(request.body) > MAX_BODY_BYTES:
        return None
    try:
        body = json.loads(request.body)
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


@csrf_exempt
@require_POST
async def guest(request: HttpRequest) -> JsonResponse:
    """``POST /api/auth/guest {"name"?}`` -> 201 ``{player_id, ticket, expires_in}``."""
    if not settings.GAME_ALLOW_GUESTS:
        return _error(404, "not_found", "guest login is disabled on this server")
    if limited := await _rate_limited(request, "http.auth.guest"):
        return limited
    body = _json_body(request)
    if body is None:
        return _error(400, "invalid", "the body must be a JSON object")
    name = body.get("name", "")
    if name != "" and (not isinstance(name, str) or not 1 <= len(name) <= GUEST_NAME_MAX):
        return _error(400, "invalid", f"name must be 1-{GUEST_NAME_MAX} characters", field="name")
    issued = await guest_create(name=name)
    return JsonResponse(
        {"player_id": issued.player_id, "ticket": issued.ticket, "expires_in": issued.expires_in},
        status=201,
    )


@csrf_exempt
@require_POST
async def ticket(request: HttpRequest) -> JsonResponse:
    """``POST /api/auth/ticket`` for a logged-in user -> 201 ``{player_id, ticket, expires_in}``."""
    if limited := await _rate_limited(request, "http.auth.ticket"):
        return limited
    user = await request.auser()
    if not user.is_authenticated:
        return _error(401, "unauthenticated", "log in first")
    issued = ticket_issue(player_id=player_id_for_user(user.pk))
    return JsonResponse(
        {"player_id": issued.player_id, "ticket": issued.ticket, "expires_in": issued.expires_in},
        status=201,
    )

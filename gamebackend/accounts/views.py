"""The auth HTTP API (``/api/auth/*``): JSON in and out, CSRF-exempt, no cookies needed.

Every answer under ``/api/auth/`` is JSON, errors included (wrong method, unknown path,
server error): ``{"error": {"code", "message", "field"?, "retry_after_ms"?}}``. Each
endpoint is rate-limited per client address through ``admit("http.auth.<name>")``.
"""

from __future__ import annotations

import functools
import json
import logging
import math
from collections.abc import Callable, Coroutine
from typing import Any, Final

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from gamebackend.accounts.errors import (
    AuthError,
    Invalid,
    MethodNotAllowed,
    NotFound,
    RateLimited,
    ServerError,
    TooLarge,
    Unauthenticated,
)
from gamebackend.accounts.services import (
    GUEST_NAME_MAX,
    account_login,
    account_register,
    device_authenticate,
    guest_create,
    player_id_for_user,
    session_refresh,
    session_revoke,
    ticket_issue,
)
from gamebackend.clientaddr import request_client_address
from gamebackend.flow.admission import admit

logger = logging.getLogger(__name__)

MS_PER_S: Final = 1000

View = Callable[[HttpRequest], Coroutine[Any, Any, HttpResponse]]


def client_ip(request: HttpRequest) -> str:
    """The client address that per-IP limits and login lockouts count against (behind
    ``GAME_TRUSTED_PROXIES``, the one the proxy names)."""
    return request_client_address(request)


def _error_response(error: AuthError) -> JsonResponse:
    body: dict[str, Any] = {"code": error.code, "message": error.message}
    if error.field is not None:
        body["field"] = error.field
    if error.retry_after_ms is not None:
        body["retry_after_ms"] = error.retry_after_ms
    response = JsonResponse({"error": body}, status=error.status)
    if error.retry_after_ms is not None:
        response["Retry-After"] = str(max(1, math.ceil(error.retry_after_ms / MS_PER_S)))
    return response


def _json(data: dict[str, Any] | None, status: int) -> HttpResponse:
    response = HttpResponse(status=status) if data is None else JsonResponse(data, status=status)
    # Tickets and refresh tokens are credentials: no cache may keep them (RFC 6749 5.1).
    response["Cache-Control"] = "no-store"
    return response


def auth_api(resource: str) -> Callable[[View], View]:
    """POST only, rate-limited by ``resource`` per client address, every error as JSON."""

    def decorate(view: View) -> View:
        @functools.wraps(view)
        async def wrapper(request: HttpRequest) -> HttpResponse:
            try:
                if request.method != "POST":
                    raise MethodNotAllowed(f"{request.method} is not allowed here; use POST")
                decision = await admit(resource, ip=client_ip(request))
                if decision.rejected:
                    raise RateLimited("too many requests", retry_after_ms=decision.retry_after_ms)
                return await view(request)
            except AuthError as exc:
                response = _error_response(exc)
            except RequestDataTooBig:
                response = _error_response(TooLarge("the request body is too large"))
            except Exception:
                logger.exception("%s failed", request.path)
                response = _error_response(ServerError("server error; retry later"))
            if response.status_code == MethodNotAllowed.status:
                response["Allow"] = "POST"
            return response

        return csrf_exempt(wrapper)

    return decorate


def _body(request: HttpRequest) -> dict[str, Any]:
    """The request's JSON object (an empty body is ``{}``); Invalid otherwise."""
    raw = request.body
    if not raw:
        return {}
    limit = settings.GAME_MAX_AUTH_BODY_BYTES  # the ASGI guard refuses larger ones first
    if len(raw) > limit:
        raise TooLarge(f"the body must be at most {limit} bytes")
    try:
        body = json.loads(raw)
    except ValueError:
        raise Invalid("the body must be a JSON object") from None
    if not isinstance(body, dict):
        raise Invalid("the body must be a JSON object")
    return body


@auth_api("http.auth.guest")
async def guest(request: HttpRequest) -> HttpResponse:
    """``POST /api/auth/guest {"name"?}`` -> 201 login (when guests are allowed)."""
    if not settings.GAME_ALLOW_GUESTS:
        raise NotFound("guest login is disabled on this server")
    name = _body(request).get("name", "")
    if name != "" and (not isinstance(name, str) or not 1 <= len(name) <= GUEST_NAME_MAX):
        raise Invalid(f"name must be 1-{GUEST_NAME_MAX} characters", field="name")
    return _json((await guest_create(name=name)).as_json(), 201)


@auth_api("http.auth.device")
async def device(request: HttpRequest) -> HttpResponse:
    """``POST /api/auth/device {"device_id"}`` -> 200 login (the same player per device)."""
    login = await device_authenticate(device_id=_body(request).get("device_id"))
    return _json(login.as_json(), 200)


@auth_api("http.auth.register")
async def register(request: HttpRequest) -> HttpResponse:
    """``POST /api/auth/register {"username", "password"}`` -> 201 login."""
    body = _body(request)
    login = await account_register(username=body.get("username"), password=body.get("password"))
    return _json(login.as_json(), 201)


@auth_api("http.auth.login")
async def login(request: HttpRequest) -> HttpResponse:
    """``POST /api/auth/login {"username", "password"}`` -> 200 login."""
    body = _body(request)
    result = await account_login(
        username=body.get("username"), password=body.get("password"), ip_address=client_ip(request)
    )
    return _json(result.as_json(), 200)


@auth_api("http.auth.refresh")
async def refresh(request: HttpRequest) -> HttpResponse:
    """``POST /api/auth/refresh {"refresh_token"}`` -> 200 login with the next token."""
    result = await session_refresh(refresh_token=_body(request).get("refresh_token"))
    return _json(result.as_json(), 200)


@auth_api("http.auth.refresh")
async def logout(request: HttpRequest) -> HttpResponse:
    """``POST /api/auth/logout {"refresh_token"}`` -> 204; the token's session ends."""
    await session_revoke(refresh_token=_body(request).get("refresh_token"))
    return _json(None, 204)


@auth_api("http.auth.ticket")
async def ticket(request: HttpRequest) -> HttpResponse:
    """``POST /api/auth/ticket`` for a logged-in console user -> 201 ticket."""
    user = await request.auser()
    if not user.is_authenticated:
        raise Unauthenticated("log in first")
    return _json(ticket_issue(player_id=player_id_for_user(user.pk)).as_json(), 201)


@csrf_exempt
async def not_found(request: HttpRequest, rest: str = "") -> HttpResponse:
    """Any other path under ``/api/auth``: a JSON 404."""
    return _error_response(NotFound(f"no such endpoint: {request.path}"))

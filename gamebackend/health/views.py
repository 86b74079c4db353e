from __future__ import annotations

import asyncio
import ipaddress
from dataclasses import asdict
from typing import Any

from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from gamebackend.clientaddr import request_client_address
from gamebackend.health.checks import FAIL, check_status, readiness_report
from gamebackend.health.checks import supervised_worker as read_supervised_worker

HTTP_SERVICE_UNAVAILABLE = 503
# Headers a proxy adds: a request that carries one came through a proxy, so its loopback
# peer address says nothing about where the client is.
PROXY_HEADERS = ("HTTP_X_FORWARDED_FOR", "HTTP_FORWARDED", "HTTP_X_REAL_IP")


@never_cache
@require_GET
async def healthz(request: HttpRequest) -> JsonResponse:
    """The process is alive and its event loop answers."""
    return JsonResponse({"status": "ok", "checks": {}})


def is_local_request(request: HttpRequest) -> bool:
    """From this machine: the client address (behind ``GAME_TRUSTED_PROXIES``, the one the
    proxy names) is loopback. A proxy that is not trusted but on the same machine must add
    ``X-Forwarded-For`` (or another proxy header), or every client would look local."""
    client = request_client_address(request)
    peer = str(request.META.get("REMOTE_ADDR") or "")
    if client == peer and any(request.META.get(header) for header in PROXY_HEADERS):
        return False
    try:
        address = ipaddress.ip_address(client)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


async def may_see_details(request: HttpRequest) -> bool:
    """Check error texts name hosts, ports and internals: staff or local requests only."""
    if is_local_request(request):
        return True
    user = await request.auser()
    return bool(user.is_active and user.is_staff)


@never_cache
@require_GET
async def readyz(request: HttpRequest) -> JsonResponse:
    """Ready (200) when the database, channel layer, broker, a worker and the flow rules
    answer; ``degraded`` (still 200) while a crashed worker is being restarted; 503 when
    anything fails. The status of each check is public, the reason only for staff and
    local requests (docs: README, Health)."""
    status, checks = await readiness_report()
    body: dict[str, Any] = {"status": status}
    if await may_see_details(request):
        body["checks"] = checks
        supervised = await asyncio.to_thread(read_supervised_worker)
        if supervised is not None:
            body["worker_supervisor"] = asdict(supervised)
    else:
        body["checks"] = {name: check_status(value) for name, value in checks.items()}
    code = HTTP_SERVICE_UNAVAILABLE if status == FAIL else 200
    return JsonResponse(body, status=code)

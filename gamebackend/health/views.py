from __future__ import annotations

import asyncio
from dataclasses import asdict
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from gamebackend.health.access import may_see_internals
from gamebackend.health.checks import FAIL, check_status, readiness_report
from gamebackend.health.checks import supervised_worker as read_supervised_worker
from gamebackend.metrics import CONTENT_TYPE, exposition

HTTP_SERVICE_UNAVAILABLE = 503


@never_cache
@require_GET
async def healthz(request: HttpRequest) -> JsonResponse:
    """The process is alive and its event loop answers."""
    return JsonResponse({"status": "ok", "checks": {}})


@never_cache
@require_GET
async def readyz(request: HttpRequest) -> JsonResponse:
    """Ready (200) when the database, channel layer, broker, a worker and the flow rules
    answer; ``degraded`` (still 200) while a crashed worker is being restarted; 503 when
    anything fails. The status of each check is public, the reason only for staff and
    local requests (docs: README, Health)."""
    status, checks = await readiness_report()
    body: dict[str, Any] = {"status": status}
    if await may_see_internals(request):
        body["checks"] = checks
        supervised = await asyncio.to_thread(read_supervised_worker)
        if supervised is not None:
            body["worker_supervisor"] = asdict(supervised)
    else:
        body["checks"] = {name: check_status(value) for name, value in checks.items()}
    code = HTTP_SERVICE_UNAVAILABLE if status == FAIL else 200
    return JsonResponse(body, status=code)


@never_cache
@require_GET
async def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus metrics of every server process of this node; local requests or staff."""
    if not await may_see_internals(request):
        return JsonResponse(
            {"error": {"code": "forbidden", "message": "metrics are for this host or staff"}},
            status=403,
        )
    return HttpResponse(exposition(), content_type=CONTENT_TYPE)

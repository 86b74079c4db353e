from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from gamebackend.health.checks import readiness_report

HTTP_SERVICE_UNAVAILABLE = 503


@never_cache
@require_GET
async def healthz(request: HttpRequest) -> JsonResponse:
    """The process is alive and its event loop answers."""
    return JsonResponse({"status": "ok", "checks": {}})


@never_cache
@require_GET
async def readyz(request: HttpRequest) -> JsonResponse:
    """Ready when the database, channel layer, broker and a worker all answer."""
    ready, checks = await readiness_report()
    return JsonResponse(
        {"status": "ok" if ready else "fail", "checks": checks},
        status=200 if ready else HTTP_SERVICE_UNAVAILABLE,
    )

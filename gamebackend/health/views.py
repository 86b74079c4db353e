from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from gamebackend.health.access import is_local_or_staff
from gamebackend.health.checks import readiness_report
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
    """Ready when the database, channel layer, broker and a worker all answer."""
    ready, checks = await readiness_report()
    return JsonResponse(
        {"status": "ok" if ready else "fail", "checks": checks},
        status=200 if ready else HTTP_SERVICE_UNAVAILABLE,
    )


@never_cache
@require_GET
async def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus metrics of every server process of this node; local requests or staff."""
    if not await is_local_or_staff(request):
        return JsonResponse(
            {"error": {"code": "forbidden", "message": "metrics are for this host or staff"}},
            status=403,
        )
    return HttpResponse(exposition(), content_type=CONTENT_TYPE)

"""The node's own pages outside the console: a landing page at ``/`` and its documents.

The README and docs/ are served from the node's checkout (the GitHub copies are not
reachable from an offline machine), as preformatted text inside the site's template.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import Resolver404, resolve
from django.utils import timezone
from django.views.decorators.http import require_safe

# The browser play page, linked only once some app serves it.
PLAY_PATH = "/play/"
WS_PATH = "/ws/game/"
# django-axes' status for a lockout: Too Many Requests.
LOCKOUT_STATUS = 429


def _documents() -> dict[str, Path]:
    """Name -> file of every document the node can show (the README, then docs/)."""
    base = Path(settings.BASE_DIR)
    found = {"README": base / "README.md"}
    found.update({path.stem: path for path in sorted((base / "docs").glob("*.md"))})
    return {name: path for name, path in found.items() if path.is_file()}


def _title(path: Path) -> str:
    with path.open(encoding="utf-8") as fh:
        first = fh.readline().strip()
    return first.lstrip("#").strip() or path.stem


def _play_url() -> str | None:
    try:
        resolve(PLAY_PATH)
    except Resolver404:
        return None
    return PLAY_PATH


def _site(request: HttpRequest, **extra: object) -> dict[str, object]:
    docs = _documents()
    return {
        "play_url": _play_url(),
        "docs": [(name, _title(path)) for name, path in docs.items()],
        "readme": "README" in docs,
        **extra,
    }


@require_safe
def landing(request: HttpRequest) -> HttpResponse:
    scheme = "wss" if request.is_secure() else "ws"
    context = _site(
        request,
        ws_url=f"{scheme}://{request.get_host()}{WS_PATH}",
        guests=settings.GAME_ALLOW_GUESTS,
    )
    return render(request, "console/landing.html", context)


@require_safe
def document(request: HttpRequest, name: str) -> HttpResponse:
    path = _documents().get(name)
    if path is None:  # only names listed above: no path ever comes from the request
        raise Http404("no such document")
    text = path.read_text(encoding="utf-8")
    return render(
        request,
        "console/document.html",
        _site(request, name=name, title=_title(path), text=text),
    )


def lockout(
    request: HttpRequest, original_response: HttpResponse | None = None, credentials: Any = None
) -> HttpResponse:
    """django-axes' answer to a locked-out console login: a styled page saying when the
    account unlocks (the cool-off runs from this, the latest, failed attempt)."""
    cool_off = timedelta(hours=settings.AXES_COOLOFF_TIME)
    unlocks_at = timezone.now() + cool_off
    context = {
        "unlocks_at": unlocks_at,
        "minutes": int(cool_off.total_seconds() // 60),
        "failure_limit": settings.AXES_FAILURE_LIMIT,
    }
    return render(request, "console/lockout.html", context, status=LOCKOUT_STATUS)

"""Who may read a node's internals (``/metrics``): a request from this machine, or staff.

"This machine" means a loopback peer that is not relaying anybody: a request that came
through a proxy on the same host (nginx in ``make cluster``) carries ``X-Forwarded-For``
and is treated as remote, so the proxy never makes the internals public.
"""

from __future__ import annotations

import ipaddress

from django.http import HttpRequest


def is_local(request: HttpRequest) -> bool:
    if "HTTP_X_FORWARDED_FOR" in request.META or "HTTP_FORWARDED" in request.META:
        return False
    try:
        return ipaddress.ip_address(request.META.get("REMOTE_ADDR", "")).is_loopback
    except ValueError:
        return False


async def is_local_or_staff(request: HttpRequest) -> bool:
    if is_local(request):
        return True
    user = await request.auser()
    return bool(user.is_active and user.is_staff)

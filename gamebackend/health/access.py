"""Who may read a node's internals (``/readyz`` details, ``/metrics``): staff, or a
request from this machine.

"This machine" means the client address (behind ``GAME_TRUSTED_PROXIES``, the one the
proxy names) is loopback. A proxy on the same host that is not trusted must add
``X-Forwarded-For`` (or another proxy header), as nginx does in ``make cluster``: such a
request counts as remote, so a proxy never makes the internals public.
"""

from __future__ import annotations

import ipaddress

from django.http import HttpRequest

from gamebackend.clientaddr import request_client_address

# Headers a proxy adds: a request that carries one came through a proxy, so its loopback
# peer address says nothing about where the client is.
PROXY_HEADERS = ("HTTP_X_FORWARDED_FOR", "HTTP_FORWARDED", "HTTP_X_REAL_IP")


def is_local_request(request: HttpRequest) -> bool:
    client = request_client_address(request)
    peer = str(request.META.get("REMOTE_ADDR") or "")
    if client == peer and any(request.META.get(header) for header in PROXY_HEADERS):
        return False  # relayed by a proxy we do not trust: the peer is the proxy
    try:
        address = ipaddress.ip_address(client)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


async def may_see_internals(request: HttpRequest) -> bool:
    """Check error texts and metrics name hosts, ports and internals: staff or local only."""
    if is_local_request(request):
        return True
    user = await request.auser()
    return bool(user.is_active and user.is_staff)

"""The client's address, as every per-IP limit and the console lockout must see it.

Behind a TLS-terminating proxy or load balancer every TCP peer is the proxy, so limits
keyed on the peer put all players in one bucket and one player's bad passwords lock the
operator out for everyone. With ``GAME_TRUSTED_PROXIES`` set (comma-separated CIDRs), a
request whose TCP peer is a trusted proxy is attributed to the rightmost
``X-Forwarded-For`` hop that is not itself a trusted proxy: each proxy appends the address
it received from, so hops to the left of the first untrusted one are whatever the client
chose to send. With nothing configured, or a peer that is not trusted, the header is
ignored: anyone can send one.

``client_address(scope)`` serves both ASGI scopes (``http`` and ``websocket``);
``request_client_address(request)`` serves Django requests (the HTTP API, django-axes
through ``AXES_CLIENT_IP_CALLABLE``).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from django.conf import settings

from gamebackend.conf import Network

__all__ = [
    "MAX_FORWARDED_HOPS",
    "client_address",
    "request_client_address",
    "resolve_client",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# Hops of X-Forwarded-For looked at, from the right: real proxy chains are a few hops,
# and a client can make the header as long as the server's header limit allows.
MAX_FORWARDED_HOPS = 16
_FORWARDED_FOR = b"x-forwarded-for"


def _parse_ip(text: str) -> IPAddress | None:
    """An address as proxies write it: bare, ``[v6]:port`` or ``v4:port``; else None."""
    text = text.strip()
    if text.startswith("["):
        text = text[1 : text.find("]")] if "]" in text else ""
    elif text.count(":") == 1:
        text = text.partition(":")[0]  # v4:port (a bare IPv6 has several colons)
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped  # ::ffff:192.0.2.1 is 192.0.2.1 (dual-stack sockets)
    return address


def _trusted(address: IPAddress, trusted: Sequence[Network]) -> bool:
    return any(address.version == net.version and address in net for net in trusted)


def resolve_client(peer: str, forwarded_for: Iterable[str], trusted: Sequence[Network]) -> str:
    """The client address for a TCP ``peer`` and its ``X-Forwarded-For`` header values
    (in the order received), given the ``trusted`` proxy networks."""
    if not trusted:
        return peer
    peer_ip = _parse_ip(peer)
    if peer_ip is None or not _trusted(peer_ip, trusted):
        return peer if peer_ip is None else str(peer_ip)
    hops = ",".join(forwarded_for).rsplit(",", MAX_FORWARDED_HOPS)[-MAX_FORWARDED_HOPS:]
    client = peer_ip
    for hop in reversed(hops):
        address = _parse_ip(hop)
        if address is None:
            # Not an address (empty, "unknown", an obfuscated id): nothing further left
            # can be trusted, and the hop that handed it on is the closest known sender.
            break
        client = address
        if not _trusted(address, trusted):
            break
    return str(client)


def client_address(scope: Mapping[str, Any]) -> str:
    """The client address of an ASGI ``http`` or ``websocket`` scope ("" when unknown)."""
    client = scope.get("client")
    peer = str(client[0]) if client and client[0] else ""
    trusted = settings.GAME_TRUSTED_PROXIES
    if not trusted:
        return peer
    headers = scope.get("headers", ())
    forwarded = [value.decode("latin-1") for name, value in headers if name == _FORWARDED_FOR]
    return resolve_client(peer, forwarded, trusted)


def request_client_address(request: Any) -> str:
    """The client address of a Django request (``AXES_CLIENT_IP_CALLABLE`` too)."""
    scope = getattr(request, "scope", None)
    if scope is not None:
        return client_address(scope)
    # A request without an ASGI scope (Django's test client, WSGI): the same rule on META.
    meta = request.META
    forwarded = meta.get("HTTP_X_FORWARDED_FOR")
    peer = str(meta.get("REMOTE_ADDR") or "")
    return resolve_client(peer, [forwarded] if forwarded else [], settings.GAME_TRUSTED_PROXIES)

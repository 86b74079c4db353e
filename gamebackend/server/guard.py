"""What the node's server enforces per TCP connection, before any application code runs.

- A cap on concurrent connections per client address (``GAME_MAX_CONNS_PER_IP``): one
  address cannot hold the node's file descriptors (slowloris, connection floods). Over the
  cap a new connection is answered ``429`` with a JSON body and closed before its request
  is read. Addresses of trusted proxies (``GAME_TRUSTED_PROXIES``) are exempt: all their
  clients share them, and the application limits those clients by their forwarded address.
- A deadline for every request head and WebSocket upgrade (``GAME_HANDSHAKE_TIMEOUT_S``),
  counted from its first byte (from the connect, for the first request), however slowly
  the bytes trickle in: a connection that has not completed its upgrade by then is closed.

Pure bookkeeping, no I/O: the server modules call it from their protocol callbacks.
"""

from __future__ import annotations

import ipaddress
import json
import logging
from collections.abc import Iterable
from typing import Final

from gameproto import REFUSED_TOO_MANY_CONNECTIONS

logger = logging.getLogger("gamebackend.server")

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def _refusal(max_per_ip: int) -> bytes:
    body = json.dumps(
        {
            "error": {
                "code": REFUSED_TOO_MANY_CONNECTIONS,
                "message": f"more than {max_per_ip} connections from this address",
            }
        }
    ).encode()
    head = (
        "HTTP/1.1 429 Too Many Requests\r\n"
        "content-type: application/json\r\n"
        f"content-length: {len(body)}\r\n"
        "connection: close\r\n\r\n"
    )
    return head.encode("latin-1") + body


class ConnectionGuard:
    """Counts open connections per client address; the deadline every handshake gets."""

    __slots__ = ("_counts", "_exempt", "handshake_timeout_s", "max_per_ip", "refusal", "refused")

    def __init__(
        self,
        *,
        max_per_ip: int,
        handshake_timeout_s: float,
        exempt: Iterable[IPNetwork] = (),
    ) -> None:
        if max_per_ip < 1 or handshake_timeout_s <= 0:
            raise ValueError("max_per_ip must be >= 1 and handshake_timeout_s > 0")
        self.max_per_ip = max_per_ip
        self.handshake_timeout_s = handshake_timeout_s
        self._exempt = tuple(exempt)
        self._counts: dict[str, int] = {}
        self.refused = 0
        # The bytes a refused connection gets before it is closed (HTTP 429, JSON body).
        self.refusal: Final = _refusal(max_per_ip)

    def open(self, ip: str) -> bool:
        """Count a new connection from ``ip``; False (not counted) when over the cap."""
        counts = self._counts
        n = counts.get(ip, 0)
        if n >= self.max_per_ip and not self._is_exempt(ip):
            self.refused += 1
            if self.refused == 1 or self.refused % 1000 == 0:
                logger.warning(
                    "refused a connection from %s: over %d open (%d refused so far)",
                    ip, self.max_per_ip, self.refused,
                )  # fmt: skip
            return False
        counts[ip] = n + 1
        return True

    def close(self, ip: str) -> None:
        counts = self._counts
        n = counts.get(ip, 0) - 1
        if n > 0:
            counts[ip] = n
        else:
            counts.pop(ip, None)

    def open_count(self, ip: str) -> int:
        return self._counts.get(ip, 0)

    def _is_exempt(self, ip: str) -> bool:
        if not self._exempt:
            return False
        try:
            address = ipaddress.ip_address(ip)
        except ValueError:
            return False
        return any(address in network for network in self._exempt)


def trusted_networks(value: object) -> list[IPNetwork]:
    """``GAME_TRUSTED_PROXIES`` (a comma-separated string or a list of CIDRs) as networks."""
    if not value:
        return []
    items = value.split(",") if isinstance(value, str) else list(value)  # type: ignore[call-overload]
    return [
        ipaddress.ip_network(str(item).strip(), strict=False) for item in items if str(item).strip()
    ]

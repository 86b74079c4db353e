"""Breakers inside Celery worker processes (no event loop there; rules read from the DB).

A worker has no live subscription: it re-reads the rules when their version moved, at most
every ``RULES_REFRESH_S``, which is soon enough for the flush path it protects.
"""

from __future__ import annotations

import threading
import time

from gamebackend.flow.breaker import Breaker, BreakerRegistry

RULES_REFRESH_S = 5.0

_registry = BreakerRegistry()
_lock = threading.Lock()
_checked_at = -float("inf")
_version = -1


def worker_breaker(name: str) -> Breaker:
    global _checked_at, _version
    now = time.monotonic()
    if now - _checked_at >= RULES_REFRESH_S:
        with _lock:
            if now - _checked_at >= RULES_REFRESH_S:
                from gamebackend.flow.selectors import flow_rules_load, rules_version

                if rules_version() != _version:
                    _version, _, breakers = flow_rules_load()
                    _registry.set_rules(breakers)
                _checked_at = now
    return _registry.breaker(name)

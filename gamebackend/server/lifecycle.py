"""The graceful drain every server of the node runs on SIGTERM, before its own shutdown."""

from __future__ import annotations

import asyncio
import logging

from django.conf import settings

from gamebackend.gateway.runtime import get_runtime, runtime_shutdown

logger = logging.getLogger("gamebackend.server")

# Past the actors' shutdown deadline, how long the rest of the gateway shutdown (closing
# sockets, the final flush) may take before the server goes on regardless.
SHUTDOWN_SLACK_S = 2.0


async def drain_gateway() -> None:
    """Refuse upgrades, close every game socket with 1001, await every actor's on_stop.

    Bounded by ``GAME_SHUTDOWN_TIMEOUT_S`` + ``SHUTDOWN_SLACK_S``; never raises, so the
    server always goes on to exit.
    """
    limit = settings.GAME_SHUTDOWN_TIMEOUT_S + SHUTDOWN_SLACK_S
    try:
        await asyncio.wait_for(runtime_shutdown(settings.GAME_SHUTDOWN_TIMEOUT_S), limit)
    except TimeoutError:
        logger.error("gateway shutdown did not finish within %.1fs; exiting", limit)
    except Exception:
        logger.exception("gateway shutdown failed")


def start_gateway() -> None:
    """Start the gateway runtime as the server starts (not on the first connection), so
    the flush journal's batches left by a previous run are sent again at once."""
    try:
        get_runtime()
    except Exception:
        # The first connection tries again; the server must come up regardless.
        logger.exception("starting the gateway runtime failed")

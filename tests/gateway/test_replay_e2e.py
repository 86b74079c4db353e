"""Ticket replay protection outlives a restart of a single-machine node (issue 12 item 9)."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from tests.gateway.wsclient import Raw, refused_status
from tests.nodes import start_node

pytestmark = pytest.mark.slow

# The ticket must still be inside its iat window after a restart (migrate + start), which
# takes a few seconds, more on a busy machine: give it a long window on these nodes.
LONG_TICKETS = {"GAME_TICKET_MAX_AGE_S": "120", "GAME_TICKET_TTL_S": "120"}


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGKILL], ids=["restart", "crash"])
async def test_a_used_ticket_is_refused_after_the_node_restarts(
    tmp_path: Path, stop: signal.Signals
) -> None:
    var_dir = tmp_path / "var"
    node = start_node(var_dir, env=LONG_TICKETS)
    try:
        token = node.ticket("replayer-1", ttl_s=120)
        url = f"{node.ws_url}?ticket={token}"
        raw = await Raw.open(url)
        assert (await raw.recv())["type"] == "welcome"  # the ticket was accepted
        if stop == signal.SIGKILL:
            node.proc.kill()  # the process dies with the player connected
            node.proc.wait()
        else:
            await raw.close()
    finally:
        node.stop()

    again = start_node(var_dir, secret=node.secret, env=LONG_TICKETS)
    try:
        assert await refused_status(f"{again.ws_url}?ticket={token}") == 403
        assert "refused: ticket_replayed" in again.log()
        # The player itself is welcome with a fresh ticket.
        fresh = node.ticket("replayer-1", ttl_s=120)
        assert await refused_status(f"{again.ws_url}?ticket={fresh}") is None
    finally:
        again.stop()

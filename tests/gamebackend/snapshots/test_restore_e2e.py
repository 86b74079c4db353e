"""Restore into a live actor across processes (cluster profile): the ``snapshot`` command
finds the player's node in the directory and asks its actor over the channel layer; the
actor takes the state through its mailbox, pushes it to the client, and flushes it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.gamebackend.players.chaos import start_worker, stop, wait_for
from tests.gateway.wsclient import Raw
from tests.nodes import NodeFactory
from tests.procs import manage

pytestmark = [pytest.mark.slow, pytest.mark.cluster]
COMMIT_TIMEOUT_S = 30.0
CREATE_USER = "from django.contrib.auth.models import User; User.objects.create_user('op')"

ROW = """
from gamebackend.players.models import Player
p = Player.objects.get(player_id="live1")
print(f"ROW {p.x} {p.lsn}")
"""


async def test_restore_goes_through_the_live_actor_on_its_node(
    node_factory: NodeFactory, cluster_env: dict[str, str], tmp_path: Path
) -> None:
    node = node_factory(**cluster_env)
    worker = start_worker(node.env, tmp_path / "worker.log")
    try:
        manage(node.env, "shell", "-c", CREATE_USER)
        raw = await Raw.open(node.url("live1"))
        assert (await raw.recv())["type"] == "welcome"
        await raw.recv()
        await raw.request({"type": "move", "x": 5, "y": 5, "id": 1})
        # The manual snapshot reads the live actor (the row may lag behind it).
        took = manage(node.env, "snapshot", "take", "live1", "--by", "op", check=False)
        assert took.returncode == 0, took.stderr
        taken = took.stdout
        snap_id = re.search(r"snapshot (\d+): live1 at lsn 1", taken)
        assert snap_id is not None, taken
        assert (await raw.request({"type": "move", "x": 9, "y": 9, "id": 2}))["rev"] == 2

        done = manage(node.env, "snapshot", "restore", snap_id.group(1), "--by", "op").stdout
        assert "into live:" in done, done
        pushed = await raw.recv()  # the actor pushes the restored state to the client
        assert (pushed["type"], pushed["x"], pushed["y"]) == ("state", 5.0, 5.0)
        assert pushed["rev"] >= 3

        seen: list[str] = []

        def row_restored() -> bool:
            found = re.search(r"ROW (\S+) (\d+)", manage(node.env, "shell", "-c", ROW).stdout)
            seen.append(found.group(0) if found else "?")
            return found is not None and found.groups() == ("5.0", str(pushed["rev"]))

        try:
            wait_for(row_restored, COMMIT_TIMEOUT_S, "restored row flushed")
        except AssertionError:
            raise AssertionError(f"row: {seen[-3:]}, pushed {pushed}") from None
        listing = manage(node.env, "snapshot", "list", "live1").stdout
        assert "pre_restore" in listing
        assert "manual" in listing
        await raw.ws.close()
    finally:
        stop(worker)
        node.stop()

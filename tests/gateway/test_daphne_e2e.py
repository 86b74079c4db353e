"""Smoke subset on Daphne (``GAME_SERVER=daphne``), the node's alternative server.

The default server (uvicorn) runs the whole end-to-end suite; these check that Daphne,
which stays for ``runserver`` and as a fallback, still serves the game: requests, refused
tickets, close codes with reasons, the size limit, redacted logs and the SIGTERM drain.
"""

from __future__ import annotations

import json
import signal
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from websockets.exceptions import ConnectionClosed

from tests.gateway.wsclient import Raw, refused
from tests.nodes import Node, NodeFactory, start_node

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def daphne_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    node = start_node(tmp_path_factory.mktemp("daphne") / "var", env={"GAME_SERVER": "daphne"})
    yield node
    node.stop()


async def connected(node: Node) -> Raw:
    raw = await Raw.open(node.url(f"p{uuid.uuid4().hex[:12]}"))
    assert (await raw.recv())["type"] == "welcome"
    assert (await raw.recv())["type"] == "state"
    return raw


async def test_requests_are_answered(daphne_node: Node) -> None:
    assert "(daphne)" in daphne_node.log()
    raw = await connected(daphne_node)
    reply = await raw.request({"type": "move", "x": 3, "y": 4, "id": 1})
    assert (reply["type"], reply["x"], reply["re"]) == ("state", 3.0, 1)
    await raw.close()


async def test_a_bad_ticket_is_a_bare_403(daphne_node: Node) -> None:
    # Daphne has no denial-response extension: the status only, no JSON reason.
    assert await refused(f"{daphne_node.ws_url}?ticket=nope") == (403, None)


async def test_bad_frames_close_with_4400_and_a_reason(daphne_node: Node) -> None:
    raw = await connected(daphne_node)
    for _ in range(11):
        await raw.ws.send("garbage")
    with pytest.raises(ConnectionClosed) as closed:
        await raw.drain()
    assert closed.value.rcvd is not None
    assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (4400, "too many bad messages")


async def test_oversize_message_closes_with_1009(daphne_node: Node) -> None:
    raw = await connected(daphne_node)
    await raw.ws.send(json.dumps({"type": "state", "pad": "x" * (64 * 1024)}))
    assert await raw.closed_with() == 1009


async def test_the_ticket_never_reaches_the_log(daphne_node: Node) -> None:
    url = daphne_node.url("log-check")
    ticket = url.split("ticket=")[1]
    raw = await Raw.open(url)
    await raw.recv()
    await raw.close()
    assert "WSCONNECT /ws/game/" in daphne_node.log()
    assert ticket not in daphne_node.log()


async def test_sigterm_closes_with_1001_and_exits_0(node_factory: NodeFactory) -> None:
    node = node_factory(GAME_SERVER="daphne")
    raw = await connected(node)
    node.proc.send_signal(signal.SIGTERM)
    assert await raw.closed_with() == 1001
    assert node.proc.wait(timeout=10) == 0
    assert "closed 1 connections; stopping actors" in node.log()
    assert Path(node.env["GAME_VAR_DIR"], "broker", "queue").exists()

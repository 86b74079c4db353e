"""The console in the cluster profile: two nodes on the real PostgreSQL and Redis. The
console of one node sees the other node's player (the nodes' reports in Redis) and kicks
them with a message first (commands over Redis pub/sub to the node that holds them)."""

from __future__ import annotations

import asyncio
import html
import json
import re
import time
import urllib.parse
import urllib.request
import uuid
from typing import Any

import pytest

from tests.gateway.wsclient import Raw, refused
from tests.nodes import NodeFactory
from tests.procs import ADMIN_PASSWORD, HTTP_TIMEOUT_S, console_opener, csrf_token, manage

pytestmark = [pytest.mark.slow, pytest.mark.cluster]
# Reports come every 2 s; a bound for a busy machine.
REPORT_DEADLINE_S = 20.0


def _get(opener: Any, url: str) -> str:
    with opener.open(url, timeout=HTTP_TIMEOUT_S) as resp:
        return str(resp.read().decode())


def _get_status(opener: Any, url: str) -> tuple[int, str]:
    with opener.open(url, timeout=HTTP_TIMEOUT_S) as resp:
        return resp.status, resp.read().decode()


def _post(opener: Any, url: str, referer: str, **fields: str) -> int:
    page = _get(opener, referer)
    form = urllib.parse.urlencode({"csrfmiddlewaretoken": csrf_token(page), **fields}).encode()
    request = urllib.request.Request(url, data=form, headers={"Referer": referer})
    with opener.open(request, timeout=HTTP_TIMEOUT_S) as resp:
        return int(resp.status)


async def test_one_nodes_console_sees_messages_kicks_and_blocks_a_player_on_another(
    cluster_env: dict[str, str], node_factory: NodeFactory
) -> None:
    node_a = node_factory(**cluster_env)
    node_b = node_factory(secret=node_a.secret, **cluster_env)
    manage(node_a.env, "ensure_operator")
    player = f"k{uuid.uuid4().hex[:10]}"
    raw = await Raw.open(node_b.url(player))
    assert (await raw.recv())["type"] == "welcome"
    base = node_a.http_url
    opener = await asyncio.to_thread(console_opener, base, "operator", ADMIN_PASSWORD)

    # Node A's dashboard data has both nodes, and node B's session of the player.
    deadline = time.monotonic() + REPORT_DEADLINE_S
    while True:
        data = json.loads(await asyncio.to_thread(_get, opener, f"{base}/console/live.json"))
        nodes = data["nodes"]
        ours = [n for n in nodes if n.endswith((f":{node_a.port}", f":{node_b.port}"))]
        on_b = [n for n in ours if n.endswith(f":{node_b.port}")]
        if len(ours) == 2 and on_b and nodes[on_b[0]]["connections"] >= 1:
            break
        assert time.monotonic() < deadline, data
        await asyncio.sleep(0.5)
    sessions = await asyncio.to_thread(_get, opener, f"{base}/console/sessions/?q={player}")
    assert player in sessions
    assert f":{node_b.port}" in sessions

    detail_url = f"{base}/console/sessions/{player}/"
    detail = await asyncio.to_thread(_get, opener, detail_url)
    # The page's script fetches node B's answer (through Redis) from the describe URL.
    found = re.search(r'data-describe-url="([^"]+)"', detail)
    assert found is not None, detail
    describe_url = base + html.unescape(found.group(1))
    deadline = time.monotonic() + REPORT_DEADLINE_S
    while (answer := await asyncio.to_thread(_get_status, opener, describe_url))[0] != 200:
        assert time.monotonic() < deadline, "node B never described the session"
        await asyncio.sleep(0.2)
    assert "current state" in answer[1]

    status = await asyncio.to_thread(
        _post, opener, f"{detail_url}notice/", detail_url, text="hello from node A"
    )
    assert status == 200  # after the redirect
    notice = await raw.recv()
    while notice["type"] != "notice":
        notice = await raw.recv()
    assert notice["text"] == "hello from node A"

    await asyncio.to_thread(
        _post, opener, f"{detail_url}block/", detail_url, reason="go away", minutes="3"
    )
    assert await raw.closed_with() == 4000
    # Blocked on every node, not only the one that held the player.
    for node in (node_a, node_b):
        refusal = await refused(node.url(player))
        assert refusal is not None
        assert refusal[0] == 403
        assert refusal[1]["error"]["code"] == "player_blocked"

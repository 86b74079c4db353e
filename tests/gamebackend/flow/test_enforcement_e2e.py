"""Flow control end to end through real Daphne nodes."""

from __future__ import annotations

import asyncio
import json
import re
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed

from gamebackend.flow.rulesync import SYNC_POLL_S
from tests.gateway.wsclient import Raw
from tests.nodes import Node, NodeFactory
from tests.procs import (
    ADMIN_PASSWORD,
    HTTP_TIMEOUT_S,
    console_opener,
    csrf_token,
    http_get,
    manage,
)

pytestmark = pytest.mark.slow
# Enforcement must follow a console edit on every node within this.
RULE_PROPAGATION_S = 1.0
# Two moves every 100 ms (20/s) stay under the shipped ws.move limit (30/s, burst 60).
PACE_S = 0.1


def player() -> str:
    return f"f{uuid.uuid4().hex[:12]}"


async def connected(node: Node, player_id: str | None = None) -> Raw:
    raw = await Raw.open(node.url(player_id or player()))
    assert (await raw.recv())["type"] == "welcome"
    assert (await raw.recv())["type"] == "state"
    return raw


async def test_move_flood_is_rate_limited_then_closed_with_4429(
    node_factory: NodeFactory,
) -> None:
    node = node_factory()
    bystander = await connected(node)
    abuser = await connected(node)
    for i in range(200):
        await abuser.send({"type": "move", "x": 1, "y": 1, "id": i})
    messages, code = await abuser.collect_until_closed()
    assert code == 4429
    limited = [m for m in messages if m.get("code") == "rate_limited"]
    # The burst (60) went through; then rejections with a retry hint, until the 51st.
    assert len(limited) == 51
    assert all(m["retry_after_ms"] > 0 and isinstance(m["re"], int) for m in limited)
    reply = await bystander.request({"type": "move", "x": 2, "y": 2, "id": "ok"})
    assert reply["type"] == "state"
    await bystander.close()


async def test_connect_flood_from_one_ip_is_closed_with_4429(node_factory: NodeFactory) -> None:
    node = node_factory(rules=[("ws.connect", "--scope", "ip", "--rate", "1", "--burst", "3")])
    for _ in range(3):
        raw = await connected(node)
        await raw.close()
    raw = await Raw.open(node.url(player()))
    with pytest.raises(ConnectionClosed) as closed:
        await raw.recv()
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 4429
    assert closed.value.rcvd.reason.startswith("retry_after_ms=")
    assert int(closed.value.rcvd.reason.split("=")[1]) > 0


def test_guest_api_is_rate_limited_per_ip(node_factory: NodeFactory) -> None:
    node = node_factory(
        rules=[("http.auth.guest", "--scope", "ip", "--rate", "0.1", "--burst", "2")]
    )
    answers = [post_guest(node) for _ in range(3)]
    assert [status for status, _, _ in answers] == [201, 201, 429]
    _, body, retry_after = answers[2]
    assert body["error"]["code"] == "rate_limited"
    assert body["error"]["retry_after_ms"] > 0
    assert int(retry_after or 0) >= 1


def post_guest(node: Node) -> tuple[int, Any, str | None]:
    request = urllib.request.Request(f"{node.http_url}/api/auth/guest", data=b"{}")
    try:
        with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT_S) as resp:
            return resp.status, json.loads(resp.read()), resp.headers.get("Retry-After")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read()), exc.headers.get("Retry-After")


def rule_editor(node: Node, resource: str, **fields: object) -> Callable[[], None]:
    """Log in as an operator and open the rule's change form; returns the submit step."""
    opener = console_opener(node.http_url, "operator", ADMIN_PASSWORD)
    query = urllib.parse.urlencode({"q": resource, "scope__exact": "player"})
    with opener.open(f"{node.http_url}/console/flow/ratelimitrule/?{query}") as resp:
        page = resp.read().decode()
    found = set(re.findall(r"/console/flow/ratelimitrule/(\d+)/change/", page))
    assert len(found) == 1, f"expected one {resource} rule per player, found {found}"
    match = re.search(r"/console/flow/ratelimitrule/(\d+)/change/", page)
    assert match
    rule_id = match.group(1)
    url = f"{node.http_url}/console/flow/ratelimitrule/{rule_id}/change/"
    with opener.open(url, timeout=HTTP_TIMEOUT_S) as resp:
        form_page = resp.read().decode()
    data = {
        "csrfmiddlewaretoken": csrf_token(form_page),
        "resource": resource, "scope": "player", "rate": 30, "burst": 60,
        "behavior": "reject", "max_queueing_ms": 0, "warm_up_s": 0, "enabled": "on",
        "_save": "Save",
    }  # fmt: skip
    data.update(fields)
    request = urllib.request.Request(
        url, data=urllib.parse.urlencode(data).encode(), headers={"Referer": url}
    )

    def submit() -> None:
        with opener.open(request, timeout=HTTP_TIMEOUT_S) as resp:
            page = resp.read().decode()
            errors = re.findall(r'<ul class="errorlist[^"]*"[^>]*>(.*?)</ul>', page, re.S)
            assert resp.geturl().endswith("/console/flow/ratelimitrule/"), errors

    return submit


async def first_rejection(raw: Raw) -> float:
    """Send two moves per PACE_S until one is rate limited; when that happened."""
    n = 0
    while True:
        for _ in range(2):
            n += 1
            reply = await raw.request({"type": "move", "x": n % 100, "y": 0, "id": n})
            if reply.get("code") == "rate_limited":
                return time.monotonic()
            await raw.send({"type": "ack", "seq": reply["seq"]})
        await asyncio.sleep(PACE_S)


@pytest.mark.cluster
async def test_console_edit_changes_enforcement_on_both_nodes_within_1s(
    cluster_env: dict[str, str], node_factory: NodeFactory
) -> None:
    node_a = node_factory(**cluster_env)
    node_b = node_factory(secret=node_a.secret, **cluster_env)
    manage(node_a.env, "ensure_operator")
    submit = await asyncio.to_thread(rule_editor, node_a, "ws.move", rate=1, burst=2)
    on_a, on_b = await connected(node_a), await connected(node_b)
    watchers = [
        asyncio.ensure_future(first_rejection(on_a)),  # owned by this test
        asyncio.ensure_future(first_rejection(on_b)),  # owned by this test
    ]
    await asyncio.sleep(3 * PACE_S)  # traffic flows under the shipped limit
    assert not any(w.done() for w in watchers)
    edited_at = time.monotonic()
    await asyncio.to_thread(submit)
    limited_at = await asyncio.wait_for(asyncio.gather(*watchers), 5)
    assert max(limited_at) - edited_at < RULE_PROPAGATION_S
    for raw in (on_a, on_b):  # nobody was disconnected by the change
        assert (await raw.request({"type": "state", "id": "alive"}))["type"] == "state"
        await raw.close()


async def test_rule_edit_reaches_a_node_whose_first_request_was_http(
    node_factory: NodeFactory,
) -> None:
    """The rule sync started by an HTTP request keeps working after that request ended."""
    node = node_factory()
    assert post_guest(node)[0] == 201  # the node's first request: rules load here
    watcher = await connected(node)
    await asyncio.to_thread(manage, node.env, "flowrule", "ws.move", "--rate", "1", "--burst", "2")
    # A single machine: the edit comes from another process, so the version poll applies it.
    await asyncio.wait_for(first_rejection(watcher), 3 * SYNC_POLL_S)
    _, body = await asyncio.to_thread(http_get, f"{node.http_url}/readyz")
    assert body["checks"]["flow_rules"] == "ok", body
    await watcher.close()

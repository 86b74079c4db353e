"""The play page in a real browser (Debian's chromium driven by Playwright): two visitors
(two browser contexts: two devices, two players) join one room; one holds an arrow key;
the other sees that player move. Under the node's Content-Security-Policy, with no
violation and no script error.

Screenshots go to ``$GAME_VAR_DIR/screenshots/play/`` (``var/test/screenshots/play`` under
make).
"""

from __future__ import annotations

import asyncio
import os
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import gameproto as p
from gameclient import GameClient
from tests.nodes import Node
from tests.services import require_browser

pytestmark = pytest.mark.slow
# One page load, login and join on a local node; generous for a busy machine.
BROWSER_TIMEOUT_MS = 15_000
# The page measures the round trip every 2 s.
RTT_TIMEOUT_MS = 10_000

PLAYER_X = """([id, x]) => {
  const item = document.querySelector(`#players li[data-player="${id}"]`);
  return item !== null && Number(item.dataset.x) !== x;
}"""


@pytest.fixture
def screenshots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("GAME_VAR_DIR") or tmp_path) / "screenshots" / "play"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def browser() -> Iterator[Any]:
    chromium = require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        launched = pw.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            yield launched
        finally:
            launched.close()


def open_player(browser: Any, url: str, problems: list[str]) -> Any:
    """A new visitor (its own context: its own localStorage, so its own device id)."""
    page = browser.new_context().new_page()
    page.set_default_timeout(BROWSER_TIMEOUT_MS)
    page.on(
        "console",
        lambda msg: problems.append(msg.text) if msg.type in ("error", "warning") else None,
    )
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.goto(url)
    page.wait_for_selector("main[data-player-id]")
    return page


def report_a_wrong_digest(node: Node, room: str) -> int:
    """A third player (the Python SDK, in a thread of its own) joins the room and reports a
    digest that the server's simulation disagrees with; returns the tick it named."""
    result: list[int] = []

    async def cheat() -> None:
        player = f"cheat-{uuid.uuid4().hex[:8]}"

        async def ticket() -> str:
            return node.ticket(player)

        async with (
            asyncio.timeout(BROWSER_TIMEOUT_MS / 1000),
            GameClient(node.ws_url, ticket) as client,
        ):
            joined = await client.request(p.Join(room=room))
            assert isinstance(joined, p.Joined)
            while True:  # the first frame this player gets is closed and in the history
                msg = await client.recv()
                if isinstance(msg, p.Frame) and msg.room == room:
                    break
            await client.request(p.Hash(room=room, tick=msg.tick, h=12345))
            result.append(msg.tick)

    thread = threading.Thread(target=asyncio.run, args=(cheat(),), daemon=True)
    thread.start()
    thread.join(BROWSER_TIMEOUT_MS / 1000)
    assert result, "the third player could not report its digest"
    return result[0]


def position(page: Any, player: str) -> tuple[int, int]:
    item = page.wait_for_selector(f'#players li[data-player="{player}"]')
    return int(item.get_attribute("data-x")), int(item.get_attribute("data-y"))


def test_two_visitors_play_in_one_room_and_see_each_other_move(
    node: Node, browser: Any, screenshots: Path
) -> None:
    room = f"browser-{uuid.uuid4().hex[:8]}"
    url = f"{node.http_url}/play/?room={room}"
    problems: list[str] = []
    alice = open_player(browser, url, problems)
    bob = open_player(browser, url, problems)
    alice_id = alice.get_attribute("main", "data-player-id")
    bob_id = bob.get_attribute("main", "data-player-id")
    assert alice_id
    assert bob_id
    assert alice_id != bob_id

    # Each sees the other as soon as the other's first input (sent on joining) is played.
    start = position(bob, alice_id)
    position(alice, bob_id)
    bob.screenshot(path=str(screenshots / "bob-before.png"), full_page=True)

    # Alice holds the right arrow; Bob sees her move right along her row.
    alice.click("#board")
    alice.keyboard.down("ArrowRight")
    try:
        bob.wait_for_function(PLAYER_X, arg=[alice_id, start[0]])
    finally:
        alice.keyboard.up("ArrowRight")
    moved = position(bob, alice_id)
    assert moved[1] == start[1]
    assert moved[0] != start[0]
    alice.screenshot(path=str(screenshots / "alice.png"), full_page=True)
    bob.screenshot(path=str(screenshots / "bob-after.png"), full_page=True)

    # The HUD: connected, a tick, frames behind, an interpolated view, a measured RTT.
    for page in (alice, bob):
        assert page.inner_text("#status") == "open"
        assert int(page.inner_text("#tick")) > 0
        assert int(page.inner_text("#behind")) >= 0
        assert page.inner_text("#mode") in ("interpolate", "predict")
        page.wait_for_function(
            "() => document.getElementById('rtt').textContent.endsWith(' ms')",
            timeout=RTT_TIMEOUT_MS,
        )
        # Both browsers report digests of their simulation (every 10 ticks); the server
        # checks each against its own, and none disagreed.
        page.wait_for_function("() => Number(document.getElementById('digests').textContent) > 2")
        assert page.is_hidden("#desync")
        assert page.is_hidden("#banner")
    assert problems == []

    # A player whose digest disagrees with the server's simulation: every member is told,
    # and both pages show the desync banner for that tick. The game goes on.
    tick = report_a_wrong_digest(node, room)
    for page in (alice, bob):
        page.wait_for_selector("#desync:not([hidden])")
        assert page.inner_text("#desync").startswith(f"Desync at tick {tick}:")
        assert page.inner_text("#status") == "open"
    bob.screenshot(path=str(screenshots / "bob-desync.png"), full_page=True)

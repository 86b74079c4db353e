"""The operator console's live pages in a real browser (Debian's chromium, Playwright), on
one real node with real players (raw WebSocket clients): an operator sees a player on the
dashboard, messages, kicks and blocks them, tightens a rate limit and sees it enforced,
forces a breaker open and sees red, snapshots a player, compares two versions and
restores one (the client gets the state); a viewer sees no action and is refused one (403).

One node and one browser for every step, to keep CI short. Screenshots of every page go
to ``$GAME_VAR_DIR/screenshots/console/``.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.nodes import Node, start_node
from tests.procs import ADMIN_PASSWORD, manage
from tests.services import require_browser

pytestmark = pytest.mark.slow
BROWSER_TIMEOUT_MS = 15_000
# The node reports every 2 s and the dashboard polls every 3 s.
LIVE_TIMEOUT_MS = 15_000
WS_TIMEOUT_S = 10.0
VIEWER = "viewer"
VIEWER_PASSWORD = "viewer-Pass-5521-long"
PLAYER = "console-p1"
SNAP_PLAYER = "console-snap"

CREATE_VIEWER = f"""
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
user = get_user_model().objects.create_user({VIEWER!r}, password={VIEWER_PASSWORD!r}, is_staff=True)
user.groups.add(Group.objects.get(name="staff-viewers"))
"""


@pytest.fixture(scope="module")
def console_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    # A long heartbeat: the raw test clients below do not answer pings.
    node = start_node(
        tmp_path_factory.mktemp("console-live") / "var", rules=[], env={"GAME_HEARTBEAT_S": "60"}
    )
    manage(node.env, "ensure_operator")
    manage(node.env, "shell", "-c", CREATE_VIEWER)
    yield node
    node.stop()


@pytest.fixture
def screenshots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("GAME_VAR_DIR") or tmp_path) / "screenshots" / "console"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def connect(node: Node, player: str) -> Any:
    from websockets.sync.client import connect as ws_connect
    from websockets.typing import Subprotocol

    ws = ws_connect(
        node.url(player),
        subprotocols=[Subprotocol("game.v1.json")],
        open_timeout=WS_TIMEOUT_S,
        legacy=True,  # a plain connection object (closed by the test or the node)
    )
    welcome = json.loads(ws.recv(timeout=WS_TIMEOUT_S))
    assert welcome["type"] == "welcome"
    return ws


def receive_until(ws: Any, wanted: str) -> dict[str, Any]:
    deadline = time.monotonic() + WS_TIMEOUT_S
    while True:
        msg = json.loads(ws.recv(timeout=max(0.1, deadline - time.monotonic())))
        if msg["type"] == wanted:
            return dict(msg)


def move(ws: Any, request_id: str, x: float, y: float) -> dict[str, Any]:
    ws.send(json.dumps({"type": "move", "id": request_id, "x": x, "y": y}))
    while True:
        reply = receive_until(ws, "state")
        if reply.get("re") == request_id:
            return reply


def closed_with(ws: Any) -> tuple[int | None, str | None]:
    from websockets.exceptions import ConnectionClosed

    deadline = time.monotonic() + WS_TIMEOUT_S
    try:
        while time.monotonic() < deadline:
            ws.recv(timeout=max(0.1, deadline - time.monotonic()))
    except ConnectionClosed as exc:
        return (exc.rcvd.code, exc.rcvd.reason) if exc.rcvd else (None, None)
    raise AssertionError("the connection stayed open")


def login(page: Any, base: str, username: str, password: str) -> None:
    page.goto(f"{base}/console/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("input[type=submit]")
    page.wait_for_url(f"{base}/console/")


def test_operator_and_viewer_work_the_live_console(console_node: Node, screenshots: Path) -> None:
    chromium = require_browser()
    from playwright.sync_api import expect, sync_playwright
    from websockets.exceptions import InvalidStatus

    node = console_node
    base = node.http_url
    violations: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            operator = browser.new_context(viewport={"width": 1280, "height": 900})
            operator.set_default_timeout(BROWSER_TIMEOUT_MS)
            page = operator.new_page()
            page.on(
                "console",
                lambda m: violations.append(m.text) if "Content Security" in m.text else None,
            )
            login(page, base, "operator", ADMIN_PASSWORD)

            # A player connects: the dashboard shows them within a few seconds.
            ws = connect(node, PLAYER)
            expect(page.locator("#t-connections")).to_have_text("1", timeout=LIVE_TIMEOUT_MS)
            expect(page.locator("#nodes tbody tr")).to_have_count(1)
            page.screenshot(path=str(screenshots / "dashboard.png"), full_page=True)

            # Sessions: listed, searchable; the detail shows the live state.
            page.click(".console-nav >> text=Sessions")
            expect(page.locator("#sessions")).to_contain_text(PLAYER, timeout=LIVE_TIMEOUT_MS)
            page.fill("input[name=q]", "no-such-player")
            page.click("#session-search input[type=submit]")
            expect(page.locator("#sessions")).not_to_contain_text(PLAYER)
            page.fill("input[name=q]", PLAYER[:8])
            page.click("#session-search input[type=submit]")
            page.screenshot(path=str(screenshots / "sessions.png"), full_page=True)
            page.click(f"#sessions >> text={PLAYER}")
            expect(page.locator("#live-state")).to_contain_text(f"'player_id': '{PLAYER}'")
            expect(page.locator("#recent")).to_contain_text("welcome")
            page.screenshot(path=str(screenshots / "session-detail.png"), full_page=True)

            # A system message arrives on the reliable stream.
            page.fill("#session-actions input[name=text]", "maintenance in 5 minutes")
            page.click("#notice")
            notice = receive_until(ws, "notice")
            assert notice["text"] == "maintenance in 5 minutes"
            assert notice["seq"] >= 1

            # Kick: close 4000 with the operator's reason.
            page.goto(f"{base}/console/sessions/{PLAYER}/")
            page.fill("#session-actions form:first-child input[name=reason]", "stop spamming")
            page.click("#kick")
            assert closed_with(ws) == (4000, "stop spamming")

            # Kick and block: closed the same way, then upgrades refused with 403.
            ws = connect(node, PLAYER)
            page.goto(f"{base}/console/sessions/{PLAYER}/")
            page.fill("#session-actions form:nth-child(2) input[name=reason]", "cool off")
            page.fill("#session-actions input[name=minutes]", "5")
            page.click("#block")
            assert closed_with(ws) == (4000, "cool off")
            with pytest.raises(InvalidStatus) as refused:
                connect(node, PLAYER)
            assert refused.value.response.status_code == 403
            assert b"player_blocked" in (refused.value.response.body or b"")

            # Snapshots: take one of an online player, move them, compare the two kept
            # versions, restore the first: the client gets the restored state.
            snapper = connect(node, SNAP_PLAYER)
            assert move(snapper, "s1", 5, 5)["rev"] == 1
            page.goto(f"{base}/console/snapshots/?kind=player&id={SNAP_PLAYER}")
            page.click("#take")
            expect(page.locator(".messagelist")).to_contain_text("at LSN 1")
            assert move(snapper, "s2", 9, 9)["rev"] == 2
            page.click("#take")
            expect(page.locator(".messagelist")).to_contain_text("at LSN 2")
            expect(page.locator("#history tbody tr")).to_have_count(2)
            page.click("#compare")
            expect(page.locator("#snapshot-diff tr.diff-changed")).to_have_count(3)  # x y lsn
            page.screenshot(path=str(screenshots / "snapshots-compare.png"), full_page=True)
            page.locator("#history .restore-link").last.click()  # the older one, at (5, 5)
            expect(page.locator("#snapshot-diff")).to_contain_text("9.0")
            page.screenshot(path=str(screenshots / "snapshot-restore.png"), full_page=True)
            page.click("#confirm")
            expect(page.locator(".messagelist")).to_contain_text("into the live actor")
            restored = receive_until(snapper, "state")
            assert (restored["x"], restored["y"]) == (5.0, 5.0)
            assert restored["rev"] >= 3
            expect(page.locator("#history")).to_contain_text(re.compile("pre.restore", re.I))
            page.screenshot(path=str(screenshots / "snapshots.png"), full_page=True)
            snapper.close()

            # Tighten ws.move to one token and see it enforced on a fresh player.
            page.goto(f"{base}/console/flow/ratelimitrule/?q=ws.move")
            page.click("a:text-is('ws.move')")
            page.fill("#id_rate", "0.0001")
            page.fill("#id_burst", "1")
            page.click("input[name=_save]")
            expect(page.locator(".messagelist")).to_contain_text("was changed successfully")
            mover = connect(node, "console-mover")
            for n in range(3):
                mover.send(json.dumps({"type": "move", "id": f"m{n}", "x": n, "y": n}))
            limited = receive_until(mover, "error")
            assert limited["code"] == "rate_limited"
            mover.close()

            # Force a breaker open on the limits page: red on the dashboard; then reset.
            page.click(".console-nav >> text=Limits")
            page.locator(
                "input[data-breaker='celery.enqueue'][data-action='force_open']"
            ).first.click()
            expect(page.locator(".messagelist")).to_contain_text(
                re.compile("force open sent", re.IGNORECASE)
            )
            page.goto(f"{base}/console/")
            expect(page.locator("#t-breakers-tile.bad")).to_contain_text(
                "celery.enqueue", timeout=LIVE_TIMEOUT_MS
            )
            expect(page.locator("#nodes td.bad")).to_contain_text("celery.enqueue")
            page.screenshot(path=str(screenshots / "dashboard-breaker-open.png"), full_page=True)
            page.goto(f"{base}/console/flow/")
            expect(page.locator("#breakers")).to_contain_text("forced open by operator")
            page.screenshot(path=str(screenshots / "limits-and-breakers.png"), full_page=True)
            page.locator("input[data-breaker='celery.enqueue'][data-action='reset']").first.click()

            # A room: listed with its tick rate and members; its page shows the members
            # and the last frames.
            roomer = connect(node, "console-roomer")
            roomer.send(json.dumps({"type": "join", "room": "console-room", "id": "j1"}))
            assert receive_until(roomer, "joined")["room"] == "console-room"
            page.goto(f"{base}/console/rooms/")
            for _ in range(10):  # the next report (every 2 s) lists the room
                if page.locator("#rooms >> text=console-room").count():
                    break
                page.wait_for_timeout(1000)
                page.reload()
            page.click("#rooms >> text=console-room")
            expect(page.locator("#room-members")).to_contain_text("console-roomer")
            expect(page.locator("#room-frames tbody tr")).not_to_have_count(0)
            page.screenshot(path=str(screenshots / "rooms.png"), full_page=True)
            # Closing it makes its members leave, and tells them why.
            page.click("#close-room")
            expect(page.locator(".messagelist")).to_contain_text("console-room closed")
            assert "closed by an operator" in receive_until(roomer, "notice")["text"]
            roomer.close()

            # The other pages render; every action so far is in the audit log.
            page.goto(f"{base}/console/actors/")
            expect(page.locator("#actors tbody tr")).to_have_count(1)
            page.screenshot(path=str(screenshots / "actors.png"), full_page=True)
            page.goto(f"{base}/console/audit/auditentry/")
            audit = page.locator("#result_list")
            for action in (
                "notice", "kick", "kick+block 5 min", "changed", "force_open", "restore #",
            ):  # fmt: skip
                expect(audit).to_contain_text(action)
            page.screenshot(path=str(screenshots / "audit-log.png"), full_page=True)
            page.goto(f"{base}/console/flow/ratelimitrule/")
            page.screenshot(path=str(screenshots / "rate-limit-rules.png"), full_page=True)
            # Every column of the rule lists and of the rule changes fits at 1280 px.
            fits = "document.querySelector('#result_list').getBoundingClientRect().right <= 1280"
            assert page.evaluate(fits)
            page.goto(f"{base}/console/flow/breakerrule/")
            assert page.evaluate(fits)
            page.goto(f"{base}/console/flow/rulechange/")
            expect(page.locator("#result_list")).to_contain_text("0.0001")  # the new value
            assert page.evaluate(fits)
            page.screenshot(path=str(screenshots / "rule-changes.png"), full_page=True)

            # A viewer: no action buttons anywhere, and a posted action is refused with 403.
            viewer = browser.new_context(viewport={"width": 1280, "height": 900})
            viewer.set_default_timeout(BROWSER_TIMEOUT_MS)
            vpage = viewer.new_page()
            login(vpage, base, VIEWER, VIEWER_PASSWORD)
            vpage.goto(f"{base}/console/sessions/{PLAYER}/")
            expect(vpage.locator("#session-actions")).to_have_count(0)
            vpage.goto(f"{base}/console/flow/")
            expect(vpage.locator("input[data-action]")).to_have_count(0)
            vpage.goto(f"{base}/console/snapshots/?kind=player&id={SNAP_PLAYER}")
            expect(vpage.locator("#history tbody tr")).to_have_count(3)
            expect(vpage.locator("#history .restore-link, #take")).to_have_count(0)
            vpage.screenshot(path=str(screenshots / "viewer-limits-and-breakers.png"))
            token = next(c["value"] for c in viewer.cookies() if c["name"] == "csrftoken")
            refused_post = vpage.request.post(
                f"{base}/console/sessions/{PLAYER}/kick/",
                form={"csrfmiddlewaretoken": token, "reason": "nope"},
                headers={"Referer": f"{base}/console/"},
                max_redirects=0,
            )
            assert refused_post.status == 403
            viewer.close()

            # The lockout page says when the account unlocks.
            stranger = browser.new_page()
            for _ in range(10):
                stranger.goto(f"{base}/console/login/")
                stranger.fill("#id_username", "ghost")
                stranger.fill("#id_password", "wrong-password")
                stranger.click("input[type=submit]")
                if stranger.locator("#lockout").count():
                    break
            expect(stranger.locator("#lockout")).to_contain_text("It unlocks at")
            stranger.screenshot(path=str(screenshots / "lockout.png"))
            assert violations == []
        finally:
            browser.close()

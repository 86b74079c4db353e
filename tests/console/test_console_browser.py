"""The console in a real browser (Debian's chromium driven by Playwright) under the node's
Content-Security-Policy: every page works, and the browser reports no CSP violation.

Screenshots go to ``$GAME_VAR_DIR/screenshots/`` (``var/test/screenshots`` under make).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.nodes import Node, start_node
from tests.procs import ADMIN_PASSWORD, manage
from tests.services import require_browser

pytestmark = pytest.mark.slow
# One page load or click on a local node; generous for a busy machine.
BROWSER_TIMEOUT_MS = 15_000


@pytest.fixture
def console_node(tmp_path: Path) -> Iterator[Node]:
    node = start_node(tmp_path / "var", rules=[])
    manage(node.env, "ensure_operator")
    yield node
    node.stop()


@pytest.fixture
def screenshots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("GAME_VAR_DIR") or tmp_path) / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def test_console_works_in_a_browser_under_the_csp(console_node: Node, screenshots: Path) -> None:
    chromium = require_browser()
    from playwright.sync_api import sync_playwright

    base = console_node.http_url
    violations: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            page = browser.new_page()
            page.set_default_timeout(BROWSER_TIMEOUT_MS)
            page.on(
                "console",
                lambda msg: (
                    violations.append(msg.text) if "Content Security Policy" in msg.text else None
                ),
            )

            # The landing page, then into the console through its link.
            response = page.goto(f"{base}/")
            assert response is not None
            assert "script-src 'self'" in response.headers["content-security-policy"]
            page.screenshot(path=str(screenshots / "landing.png"), full_page=True)
            page.click("text=Console")
            page.fill("#id_username", "operator")
            page.fill("#id_password", ADMIN_PASSWORD)
            page.click("input[type=submit]")
            page.wait_for_url(f"{base}/console/")
            assert page.is_visible("text=Live operations")
            page.screenshot(path=str(screenshots / "console-index.png"), full_page=True)

            # The rule list: its scripts run (the select-all box counts the rows).
            page.goto(f"{base}/console/flow/ratelimitrule/")
            rows = page.locator("#result_list tbody tr").count()
            assert rows >= 6  # the shipped rules
            page.check("#action-toggle")
            assert page.inner_text(".action-counter").startswith(f"{rows} of {rows} selected")
            page.screenshot(path=str(screenshots / "rate-limits.png"), full_page=True)

            # A rule's form: the range is in the help text, an out-of-range value is
            # refused with it, a good one saved.
            page.click("a:text-is('ws.move')")
            assert "0.0001 to 1,000,000" in page.inner_text("#id_rate_helptext")
            page.fill("#id_rate", "1e300")
            page.click("input[name=_save]")
            assert "rate must be in [0.0001, 1,000,000], got 1e+300" in page.inner_text(
                ".errorlist"
            )
            page.screenshot(path=str(screenshots / "rule-refused.png"), full_page=True)
            page.fill("#id_rate", "20")
            page.click("input[name=_save]")
            assert "was changed successfully" in page.inner_text(".messagelist")

            # The live node page and "View site" to the play page.
            page.goto(f"{base}/console/flow/nodeflowstate/")
            page.click("text=View site")
            page.wait_for_url(f"{base}/play/")
            page.goto(f"{base}/docs/PROTOCOL/")
            assert "Game WebSocket protocol (v1)" in page.inner_text("pre")
            page.screenshot(path=str(screenshots / "document.png"))
            assert violations == []

            # And the policy is enforced: an injected inline script does not run.
            page.goto(f"{base}/")
            with contextlib.suppress(Exception):  # Playwright may report the refusal
                page.add_script_tag(content="window.injected = true;")
            assert page.evaluate("window.injected === undefined")
            assert any("inline script" in text for text in violations), violations
        finally:
            browser.close()

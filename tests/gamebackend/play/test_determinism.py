"""Cross-language determinism: the recorded `demo` battle (tests/fixtures/demo_replay.jsonl)
re-run in Python (`gameproto.sims.DEMO`) and in JavaScript (the SDK's `sims.js`, in node)
gives the same digest at every tick, and the digest Python recorded when it was made."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from gameproto.sims import DEMO
from tests.services import require_node

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "demo_replay.jsonl"
JS_REPLAY = Path(__file__).resolve().parent / "js" / "replay_digests.mjs"
NODE_TIMEOUT_S = 60


def python_digests(lines: list[dict[str, object]]) -> list[tuple[int, int]]:
    state = DEMO.initial()
    digests = []
    for line in lines:
        tick = line["tick"]
        assert isinstance(tick, int)
        state = DEMO.step(state, tick, line["inputs"])  # type: ignore[arg-type]
        digests.append((tick, DEMO.digest(state)))
    return digests


def javascript_digests(node: str) -> list[tuple[int, int]]:
    done = subprocess.run(
        [node, str(JS_REPLAY), str(FIXTURE)],
        capture_output=True,
        text=True,
        check=True,
        timeout=NODE_TIMEOUT_S,
    )
    # Digests are printed as decimal strings: JSON numbers would lose bits in JavaScript.
    return [(int(tick), int(digest)) for tick, digest in map(str.split, done.stdout.splitlines())]


def test_python_and_javascript_reach_the_same_digest_at_every_tick() -> None:
    node = require_node()
    header, *lines = [json.loads(line) for line in FIXTURE.read_text().splitlines()]
    assert header["sim"] == "demo"
    recorded = [(line["tick"], line["digest"]) for line in lines]
    in_python = python_digests(lines)
    in_javascript = javascript_digests(node)
    assert len(in_javascript) == len(lines) == header["last_tick"] + 1
    for expected, py, js in zip(recorded, in_python, in_javascript, strict=True):
        assert py == js == expected, f"recorded {expected}, Python {py}, JavaScript {js}"
    # The battle is not trivial: players move, so the digests change along the way.
    assert len({digest for _, digest in in_python}) > 100

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest

from actors import AskTimeout
from actors._deadlines import COMPACT_MIN_LENGTH, MAX_TIMEOUT_CLASSES, AskDeadlines


async def test_asks_expire_in_order_with_one_timer() -> None:
    loop = asyncio.get_running_loop()
    deadlines = AskDeadlines(loop)
    futures = [loop.create_future() for _ in range(5)]
    for i, fut in enumerate(futures):
        deadlines.watch(fut, "pid", i, 0.02)
    futures[2].set_result("answered in time")
    results = await asyncio.gather(*futures, return_exceptions=True)
    assert results[2] == "answered in time"
    for i in (0, 1, 3, 4):
        assert isinstance(results[i], AskTimeout)
        assert "int" in str(results[i])
    deadlines.close()


async def test_answered_entries_are_compacted() -> None:
    loop = asyncio.get_running_loop()
    deadlines = AskDeadlines(loop)
    blocker = loop.create_future()  # stays pending at the head
    deadlines.watch(blocker, "pid", "head", 30.0)
    for _ in range(COMPACT_MIN_LENGTH * 3):
        fut = loop.create_future()
        deadlines.watch(fut, "pid", "x", 30.0)
        fut.set_result(None)
    fifo = deadlines._fifos[30.0]
    assert len(fifo._entries) <= COMPACT_MIN_LENGTH  # answered asks do not pile up
    deadlines.close()
    assert not blocker.done()


async def test_many_distinct_timeouts_fall_back_to_handles() -> None:
    loop = asyncio.get_running_loop()
    deadlines = AskDeadlines(loop)
    futures = []
    for i in range(MAX_TIMEOUT_CLASSES + 3):
        fut = loop.create_future()
        deadlines.watch(fut, "pid", "m", 0.01 + i * 1e-4)
        futures.append(fut)
    assert len(deadlines._fifos) == MAX_TIMEOUT_CLASSES
    for fut in futures:
        with pytest.raises(AskTimeout):
            await fut
    deadlines.close()


def test_every_task_in_the_library_has_an_owner() -> None:
    """House rule (also checked by a hook): no unowned create_task/ensure_future."""
    root = Path(__file__).resolve().parents[2] / "actors"
    pattern = re.compile(r"asyncio\.(create_task|ensure_future)\(|\.create_task\(")
    for path in root.glob("*.py"):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if pattern.search(line):
                assert "# owned" in line or "TaskGroup" in line, f"{path.name}:{number}: {line}"

"""The load bots' connect pacing and retry hints (pure logic, a real event loop)."""

from __future__ import annotations

import asyncio

from gamebackend.loadtest.bots import (
    DEFAULT_RETRY_AFTER_S,
    Pacer,
    _retry_after_header_s,
    _retry_after_s,
)

# asyncio may run a timer up to its clock resolution early; floats round.
EARLY_S = 1e-3


def test_retry_hints_are_read_from_close_reasons_and_headers() -> None:
    assert _retry_after_s("retry_after_ms=250") == 0.25
    assert _retry_after_s("rate-limit abuse; retry_after_ms=1200") == 1.2
    assert _retry_after_s("") == DEFAULT_RETRY_AFTER_S
    assert _retry_after_header_s("2") == 2.0
    assert _retry_after_header_s("Wed, 21 Oct 2015 07:28:00 GMT") == DEFAULT_RETRY_AFTER_S


async def test_a_refused_source_goes_one_at_a_time_after_the_hint() -> None:
    loop = asyncio.get_running_loop()
    pacer = Pacer(loop)
    # Not refused yet: attempts run side by side.
    async with pacer.turn(), pacer.turn():
        pass
    pacer.refused(0.05)
    pacer.refused(0.02)  # a shorter hint neither shortens the wait nor the interval
    refused_at = loop.time()
    started: list[float] = []

    async def attempt() -> None:
        async with pacer.turn():
            started.append(loop.time())
            pacer.admitted()  # the token it took was the last one

    await asyncio.gather(attempt(), attempt(), attempt())
    assert started[0] >= refused_at + 0.05 - EARLY_S
    # Each admitted attempt pushes the next one a whole interval later.
    assert started[1] - started[0] >= 0.05 - EARLY_S
    assert started[2] - started[1] >= 0.05 - EARLY_S

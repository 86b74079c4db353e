"""Small actors shared by the actor runtime tests."""

from __future__ import annotations

import asyncio
from typing import Any

from actors import Actor


class Get:
    """Ask for the recorded messages (also a barrier: processing is in order)."""


class Block:
    """Handler waits on `release`; sets `entered` first so tests know it is running."""

    def __init__(self) -> None:
        self.entered = asyncio.Event()
        self.release = asyncio.Event()


class Fail:
    def __init__(self, exc: BaseException | None = None) -> None:
        self.exc = exc or ValueError("fail on purpose")


class Recorder(Actor):
    """Appends every message to `log` (shared list if given); Get returns a copy."""

    def __init__(self, log: list[Any] | None = None) -> None:
        self.log: list[Any] = [] if log is None else log

    async def on_receive(self, msg: Any) -> Any:
        if isinstance(msg, Get):
            return list(self.log)
        if isinstance(msg, Block):
            msg.entered.set()
            await msg.release.wait()
            return "released"
        if isinstance(msg, Fail):
            raise msg.exc
        self.log.append(msg)
        return msg


class Lifecycle(Recorder):
    """Recorder that also records on_start/on_stop/on_failure into `events`."""

    def __init__(self, events: list[str], log: list[Any] | None = None) -> None:
        super().__init__(log)
        self.events = events

    async def on_start(self) -> None:
        self.events.append("start")

    async def on_stop(self) -> None:
        self.events.append("stop")

    async def on_failure(self, exc: BaseException, msg: Any) -> None:
        self.events.append(f"failure:{type(exc).__name__}")

"""Closed-loop bots: the next request goes when the reply comes, but a rate-limited reply
is retried after its ``retry_after_ms``, never at once (that turned one rejection into a
flood of them and the node's 4429 close)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from gamebackend.loadtest import wire
from gamebackend.loadtest.bots import Bot, Config, Engine
from tests.gamebackend.loadtest.transport import Transport


class Loop:
    """A manual clock that records ``call_later`` callbacks instead of running them."""

    def __init__(self) -> None:
        self.now = 100.0
        self.later: list[tuple[float, Callable[[], None]]] = []

    def time(self) -> float:
        return self.now

    def call_later(self, delay: float, callback: Callable[[], None]) -> Any:
        self.later.append((delay, callback))
        return type("Handle", (), {"cancel": lambda self: None})()


def closed_loop_bot() -> tuple[Bot, Transport, Loop]:
    engine = Engine(Config(url="ws://127.0.0.1:1/ws/game/", players=1, closed_loop=True))
    loop = Loop()
    engine.loop = loop  # type: ignore[assignment]
    bot = Bot(engine, "127.0.0.1", 1, "/ws/game/")
    transport = Transport()
    bot.transport = transport  # type: ignore[assignment]
    bot.state = wire.OPEN
    bot.start_sending()
    return bot, transport, loop


def reply(bot: Bot, **fields: Any) -> None:
    bot.on_message(wire.OP_TEXT, json.dumps(fields).encode())


def moves(transport: Transport) -> list[dict[str, Any]]:
    return [f for f in transport.frames if f["type"] == "move"]


async def test_a_reply_sends_the_next_request_at_once() -> None:
    bot, transport, loop = closed_loop_bot()
    first = moves(transport)[0]
    reply(bot, type="state", seq=1, re=first["id"])
    assert len(moves(transport)) == 2
    assert loop.later == []


async def test_a_rate_limited_reply_waits_its_retry_after() -> None:
    bot, transport, loop = closed_loop_bot()
    first = moves(transport)[0]
    reply(bot, type="error", code="rate_limited", re=first["id"], retry_after_ms=250)
    assert len(moves(transport)) == 1  # not at once
    assert bot.engine.stats.errors["rate_limited"] == 1
    [(delay, retry)] = loop.later
    assert delay == 0.25
    retry()
    assert len(moves(transport)) == 2


async def test_a_retry_due_after_sending_stopped_sends_nothing() -> None:
    bot, transport, loop = closed_loop_bot()
    reply(bot, type="error", code="rate_limited", re=moves(transport)[0]["id"], retry_after_ms=5)
    [(_, retry)] = loop.later
    bot.stop_sending()
    retry()
    assert len(moves(transport)) == 1


async def test_closed_loop_bots_start_together_when_the_window_opens() -> None:
    engine = Engine(Config(url="ws://127.0.0.1:1/ws/game/", players=2, closed_loop=True))
    engine.loop = Loop()  # type: ignore[assignment]
    transports = []
    for _ in range(2):
        bot = Bot(engine, "127.0.0.1", 1, "/ws/game/")
        transport = Transport()
        bot.transport = transport  # type: ignore[assignment]
        bot.state = wire.OPEN
        engine.bots.add(bot)
        reply(bot, type="welcome")  # connected and welcomed while the others connect
        transports.append(transport)
    assert [moves(t) for t in transports] == [[], []]
    engine.open_window()
    assert [len(moves(t)) for t in transports] == [1, 1]

"""The load bots' lazy acks (as the SDK's): piggybacked, else after 250 ms, or at 256."""

from __future__ import annotations

import json

from gamebackend.loadtest import wire
from gamebackend.loadtest.bots import ACK_INTERVAL_S, ACK_SLOTS, ACK_URGENT, Bot, Config, Engine
from tests.gamebackend.loadtest.transport import Transport


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def open_bot() -> tuple[Engine, Bot, Transport, Clock]:
    engine = Engine(Config(url="ws://127.0.0.1:1/ws/game/", players=1))
    clock = Clock()
    engine.loop = type("Loop", (), {"time": staticmethod(clock)})()
    bot = Bot(engine, "127.0.0.1", 1, "/ws/game/")
    transport = Transport()
    bot.transport = transport  # type: ignore[assignment]
    bot.state = wire.OPEN
    return engine, bot, transport, clock


def push(bot: Bot, seq: int) -> None:
    bot.on_message(wire.OP_TEXT, json.dumps({"type": "state", "seq": seq}).encode())


def acks(transport: Transport) -> list[int]:
    return [f["seq"] for f in transport.frames if f["type"] == "ack"]


def visit_round(engine: Engine, clock: Clock) -> None:
    """One full turn of the ack wheel: ACK_INTERVAL_S of simulated time."""
    for _ in range(ACK_SLOTS):
        clock.now += ACK_INTERVAL_S / ACK_SLOTS
        engine.visit_ack_slot((engine.ack_cursor + 1) % ACK_SLOTS)


async def test_a_request_in_time_carries_the_ack() -> None:
    engine, bot, transport, clock = open_bot()
    push(bot, 1)
    clock.now += 0.2  # the next move is due before the ack interval ends
    bot.request(clock.now)
    visit_round(engine, clock)
    moves = [f for f in transport.frames if f["type"] == "move"]
    assert [m["ack"] for m in moves] == [1]
    assert acks(transport) == []  # no separate ack frame


async def test_without_a_request_the_ack_goes_an_interval_after_the_first_message() -> None:
    engine, bot, transport, clock = open_bot()
    push(bot, 1)
    clock.now += ACK_INTERVAL_S / 2
    push(bot, 2)  # does not restart the interval
    engine.visit_ack_slot((engine.ack_cursor + 1) % ACK_SLOTS)
    assert acks(transport) == []  # not yet: the first message is only half an interval old
    visit_round(engine, clock)
    assert acks(transport) == [2]  # one cumulative ack for both


async def test_many_unacked_messages_are_acked_at_once() -> None:
    _, bot, transport, _ = open_bot()
    for seq in range(1, ACK_URGENT + 1):
        push(bot, seq)
    assert acks(transport) == [ACK_URGENT]

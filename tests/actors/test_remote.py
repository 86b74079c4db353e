"""Remote delivery between two ActorSystems over a shared channel layer."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import msgspec
import pytest
from channels.layers import InMemoryChannelLayer
from channels_redis.core import RedisChannelLayer

from actors import (
    PID,
    Actor,
    ActorStopped,
    ActorSystem,
    AskTimeout,
    RemoteActorRef,
    RemoteError,
    register_message,
)
from tests.actors.helpers import Get, Recorder

NODE_A = "node-a@127.0.0.1:8000"
NODE_B = "node-b@127.0.0.1:8001"
ORDERED_MESSAGES = 1000


@register_message(name="tests.remote.Deposit")
class Deposit(msgspec.Struct, frozen=True):
    account: str
    amount: int


class Bank(Actor):
    def __init__(self) -> None:
        self.balances: dict[str, int] = {}
        self.seen: list[Any] = []

    async def on_receive(self, msg: Any) -> Any:
        if isinstance(msg, Deposit):
            self.balances[msg.account] = self.balances.get(msg.account, 0) + msg.amount
            return Deposit(msg.account, self.balances[msg.account])
        if msg == "boom":
            raise KeyError("no such account")
        if msg == "slow":
            await asyncio.sleep(0.5)
        if msg == "unserialisable":
            return object()
        if msg == "ping-sender":
            assert self.sender is not None
            self.sender.tell({"pong": str(self.ref.pid)})
            return None
        if msg == "get":
            return self.seen
        self.seen.append(msg)
        return msg


Pair = tuple[ActorSystem, ActorSystem]


async def _pair(make_layer: Callable[[], Any], prefix: str) -> AsyncIterator[Pair]:
    a = ActorSystem(node=NODE_A, channel_layer=make_layer(), channel_prefix=prefix)
    b = ActorSystem(node=NODE_B, channel_layer=make_layer(), channel_prefix=prefix)
    await a.start()
    await b.start()
    try:
        yield a, b
    finally:
        await a.shutdown(timeout=2.0)
        await b.shutdown(timeout=2.0)
        assert a.running_tasks() == set()
        assert b.running_tasks() == set()


@pytest.fixture
async def memory_pair() -> AsyncIterator[Pair]:
    layer = InMemoryChannelLayer(capacity=100)  # small: exercises the ChannelFull retry
    async for pair in _pair(lambda: layer, "t-mem"):
        yield pair


@pytest.fixture(params=["memory", "redis"])
async def pair(request: pytest.FixtureRequest) -> AsyncIterator[Pair]:
    if request.param == "memory":
        # One layer object shared by both systems, like one Redis shared by two processes.
        # Small capacity: exercises the ChannelFull retry in the outbox.
        shared = InMemoryChannelLayer(capacity=100)
        async for pair in _pair(lambda: shared, "t-mem"):
            yield pair
        return
    redis_url: str = request.getfixturevalue("redis_url")
    # A unique key prefix per test: nothing else in the Redis db is touched.
    prefix = f"actors-test-{uuid.uuid4().hex[:12]}:"
    layers: list[RedisChannelLayer] = []

    def make_layer() -> RedisChannelLayer:
        layer = RedisChannelLayer(hosts=[redis_url], prefix=prefix, capacity=200)
        layers.append(layer)
        return layer

    async for pair in _pair(make_layer, f"t{uuid.uuid4().hex[:8]}"):
        yield pair
    await layers[0].flush()  # deletes only keys under this test's prefix
    for layer in layers:
        await layer.close_pools()


async def test_remote_ask_gets_the_reply(pair: Pair) -> None:
    a, b = pair
    local = await b.spawn(Bank, name="bank")
    remote = a.ref_for(local.pid)
    assert isinstance(remote, RemoteActorRef)
    assert not remote.is_local
    reply = await remote.ask(Deposit("alice", 5), timeout=5.0)
    assert reply == Deposit("alice", 5)
    assert await remote.ask(Deposit("alice", 7), timeout=5.0) == Deposit("alice", 12)
    assert await remote.ask({"plain": [1, 2]}, timeout=5.0) == {"plain": [1, 2]}


async def test_remote_tells_keep_their_order(pair: Pair) -> None:
    a, b = pair
    local = await b.spawn(Bank, name="ordered", mailbox_size=2 * ORDERED_MESSAGES)
    remote = a.lookup(str(local.pid))
    assert remote is not None
    for i in range(ORDERED_MESSAGES):
        remote.tell(i)
    # The ask travels the same ordered path, so it is a barrier for the tells before it.
    seen = await remote.ask("get", timeout=20.0)
    assert seen == list(range(ORDERED_MESSAGES))
    assert a.stats()["totals"]["remote_sent"] >= ORDERED_MESSAGES


async def test_remote_exception_is_raised_as_remote_error(pair: Pair) -> None:
    a, b = pair
    local = await b.spawn(Bank, name="bank")
    with pytest.raises(RemoteError, match="KeyError") as info:
        await a.ref_for(local.pid).ask("boom", timeout=5.0)
    assert info.value.type_name == "KeyError"
    assert "no such account" in info.value.remote_message
    # The failure also went to the remote supervisor (default RESTART).
    assert b.stats()["actors"][str(local.pid)]["restarts"] == 1


async def test_remote_ask_to_a_missing_actor_raises_actor_stopped(pair: Pair) -> None:
    a, b = pair
    with pytest.raises(ActorStopped, match="no such actor"):
        await a.ref_for(PID(b.node, "ghost")).ask("hello", timeout=5.0)


async def test_remote_ask_timeout(pair: Pair) -> None:
    a, b = pair
    local = await b.spawn(Bank, name="slow-bank")
    with pytest.raises(AskTimeout):
        await a.ref_for(local.pid).ask("slow", timeout=0.2)


async def test_unserialisable_messages_and_replies(pair: Pair) -> None:
    a, b = pair
    local = await b.spawn(Bank, name="bank")
    remote = a.ref_for(local.pid)
    with pytest.raises(TypeError, match="register_message"):
        remote.tell(object())
    with pytest.raises(RemoteError, match="TypeError"):
        await remote.ask("unserialisable", timeout=5.0)


async def test_sender_ref_works_across_nodes(pair: Pair) -> None:
    a, b = pair
    bank = await b.spawn(Bank, name="bank")
    inbox = await a.spawn(Recorder, name="inbox")
    a.ref_for(bank.pid).tell("ping-sender", sender=inbox)
    await a.ref_for(bank.pid).ask("barrier", timeout=5.0)
    # The pong travels b -> a over the layer; poll with asks (in-order barriers) briefly.
    for _ in range(200):
        log = await inbox.ask(Get())
        if log:
            break
        await asyncio.sleep(0.01)
    assert log == [{"pong": str(bank.pid)}]


async def test_remote_lookup_and_send(pair: Pair) -> None:
    a, b = pair
    local = await b.spawn(Bank, name="bank")
    remote = a.lookup(local.pid)
    assert isinstance(remote, RemoteActorRef)
    await remote.send("sent")
    assert await remote.ask("get", timeout=5.0) == ["sent"]
    assert a.remote_channel != b.remote_channel


async def test_dead_letters_for_tells_to_missing_remote_actors(memory_pair: Pair) -> None:
    a, b = memory_pair
    a.ref_for(PID(b.node, "ghost")).tell("lost")
    bank = await b.spawn(Bank, name="bank")
    await a.ref_for(bank.pid).ask("barrier", timeout=5.0)  # same inbound channel: ordered
    assert b.stats()["totals"]["dead_letters"] == 1


async def test_pending_remote_asks_fail_on_shutdown() -> None:
    layer = InMemoryChannelLayer()
    a = ActorSystem(node=NODE_A, channel_layer=layer)
    await a.start()
    # Nobody listens as node B: the ask can only end by timeout or by shutdown.
    asking = asyncio.ensure_future(a.ref_for(PID(NODE_B, "x")).ask("hello", timeout=30))
    while a.stats()["totals"]["remote_pending_asks"] == 0:
        await asyncio.sleep(0)  # let the ask go out (one loop turn at a time, no timing)
    await a.shutdown(timeout=0.5)
    with pytest.raises(ActorStopped, match="shut down"):
        await asking
    assert a.running_tasks() == set()


async def test_ref_for_remote_needs_a_channel_layer() -> None:
    async with ActorSystem(node=NODE_A) as a:
        with pytest.raises(RuntimeError, match="channel_layer"):
            a.ref_for(PID(NODE_B, "x"))

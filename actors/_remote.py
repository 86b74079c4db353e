"""Delivery to actors on other nodes over a Channels channel layer.

Each system listens on two channels derived from its node string: one for tells/asks and
one for ask replies (so replies never queue behind a flood of tells). Everything bound for
one channel goes through one ordered outbox drained by one task that awaits each
`layer.send`, which is what keeps messages from one node to one actor in order.

The layer is any object with `async send(channel, message)` and `async receive(channel)`
(channels' InMemoryChannelLayer, channels_redis' RedisChannelLayer, ...).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import itertools
import logging
import re
import time
from collections import deque
from typing import TYPE_CHECKING, Any, Final

from ._errors import ActorStopped, AskTimeout, MailboxFull, RemoteError
from ._mailbox import Ask, Envelope, Mailbox
from ._pid import PID
from ._ref import DEFAULT_ASK_TIMEOUT_S, ActorRef
from ._serde import (
    ASK,
    ERROR,
    REPLY,
    TELL,
    Wire,
    decode_message,
    decode_wire,
    encode_error,
    encode_message,
    encode_wire,
)

if TYPE_CHECKING:
    from ._system import ActorSystem

logger = logging.getLogger("actors.remote")

WIRE_MESSAGE_TYPE: Final = "actors.wire"
# Channels accepts names matching this and shorter than 100 characters.
_CHANNEL_RE = re.compile(r"^[a-zA-Z\d\-_.]+$")
_UNSAFE_CHARS = re.compile(r"[^a-zA-Z\d\-_.]")
MAX_CHANNEL_NAME_LENGTH: Final = 99
MAX_PREFIX_LENGTH: Final = 40
# Encoded messages waiting for one destination before tell raises MailboxFull.
REMOTE_OUTBOX_SIZE: Final = 10_000
# The layer said the destination channel is at capacity: retry, backing off to this cap.
CHANNEL_FULL_RETRY_S: Final = (0.005, 0.5)
# Any other send error (e.g. Redis down): retry this often, then give the message up.
SEND_RETRY_S: Final = 0.2
SEND_ATTEMPTS: Final = 5
# Receive errors (e.g. Redis restarting): back off up to this delay between attempts.
RECEIVE_RETRY_MAX_S: Final = 2.0
# After shutdown cancels the transport's tasks, wait at most this long for them to end.
CANCEL_GRACE_S: Final = 1.0
LOG_INTERVAL_S: Final = 1.0


def validate_prefix(prefix: str) -> str:
    if not _CHANNEL_RE.match(prefix) or len(prefix) > MAX_PREFIX_LENGTH:
        raise ValueError(
            f"invalid channel prefix {prefix!r}: letters, digits, '-', '_', '.' only, "
            f"at most {MAX_PREFIX_LENGTH} characters"
        )
    return prefix


def channel_name(prefix: str, kind: str, node: str) -> str:
    """A valid Channels channel name for `node`: readable part plus a hash for uniqueness
    (sanitising alone could map two nodes to one name)."""
    digest = hashlib.blake2b(node.encode(), digest_size=6).hexdigest()
    room = MAX_CHANNEL_NAME_LENGTH - len(prefix) - len(kind) - len(digest) - 3
    readable = _UNSAFE_CHARS.sub("_", node)[: max(room, 0)]
    name = f"{prefix}.{kind}.{readable}.{digest}" if readable else f"{prefix}.{kind}.{digest}"
    assert _CHANNEL_RE.match(name), name
    assert len(name) <= MAX_CHANNEL_NAME_LENGTH, name
    return name


class _Throttle:
    """At most one log line per interval for repetitive remote errors."""

    __slots__ = ("_last",)

    def __init__(self) -> None:
        self._last = -LOG_INTERVAL_S

    def ready(self) -> bool:
        now = time.monotonic()
        if now - self._last < LOG_INTERVAL_S:
            return False
        self._last = now
        return True


class Outbox(Mailbox):
    """Ordered queue of encoded messages for one channel, drained by one owned task."""

    __slots__ = ("_channel", "_task", "_transport")

    def __init__(self, transport: RemoteTransport, channel: str) -> None:
        super().__init__(REMOTE_OUTBOX_SIZE, "reject")
        self._transport = transport
        self._channel = channel
        self._task: asyncio.Task[None] | None = None

    @property
    def task(self) -> asyncio.Task[None] | None:
        return self._task

    def offer(self, payload: bytes) -> None:
        q = self._q
        if q is None:
            q = self._q = deque()
        elif len(q) >= self._capacity:
            self._make_room(q, payload)
        q.append(payload)
        if self._task is None:
            self._task = self._transport.own(self._drain())

    async def put(self, payload: bytes) -> None:
        while self._full():
            await self._wait_for_room()
        self.offer(payload)

    def _rejected(self, item: Any) -> None:
        self._transport.system.mailbox_rejected += 1
        raise MailboxFull(self._channel, self._capacity)

    def _dropped(self, item: Any) -> None:  # pragma: no cover - outboxes always reject
        self._transport.system.mailbox_dropped += 1

    async def _drain(self) -> None:
        transport = self._transport
        layer = transport.layer
        channel = self._channel
        full_delay = CHANNEL_FULL_RETRY_S[0]
        failures = 0
        try:
            q = self._q
            while q:
                try:
                    await layer.send(channel, {"type": WIRE_MESSAGE_TYPE, "p": q[0]})
                except Exception as exc:
                    if type(exc).__name__ == "ChannelFull":
                        # Back-pressure from the receiving node: wait, keep the order.
                        await asyncio.sleep(full_delay)
                        full_delay = min(full_delay * 2, CHANNEL_FULL_RETRY_S[1])
                        continue
                    failures += 1
                    if transport.send_errors.ready():
                        logger.warning("send to %s failed (%r); retrying", channel, exc)
                    if failures < SEND_ATTEMPTS:
                        await asyncio.sleep(SEND_RETRY_S)
                        continue
                    transport.system.dead_letters.record(channel, q[0], f"send failed: {exc!r}")
                failures = 0
                full_delay = CHANNEL_FULL_RETRY_S[0]
                q.popleft()
                transport.sent += 1
                if self._waiters:
                    self._taken()
            self._q = None
        finally:
            self._task = None


class RemoteTransport:
    """Owns the receive loops and outboxes of one ActorSystem."""

    def __init__(self, system: ActorSystem, layer: Any, prefix: str) -> None:
        self.system = system
        self.layer = layer
        self.prefix = validate_prefix(prefix)
        self.inbox = channel_name(prefix, "node", system.node)
        self.reply_channel = channel_name(prefix, "reply", system.node)
        self.tasks: set[asyncio.Task[None]] = set()
        self.sent = 0
        self.received = 0
        self.send_errors = _Throttle()
        self._receive_errors = _Throttle()
        self._outboxes: dict[str, Outbox] = {}
        self._channels: dict[str, str] = {}
        self._pending: dict[int, tuple[asyncio.Future[Any], PID]] = {}
        self._corr = itertools.count(1)
        self._started = False

    def own(self, coro: Any) -> asyncio.Task[None]:
        task: asyncio.Task[None] = self.system.loop.create_task(coro)  # owned by self.tasks
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    def start(self) -> None:
        if self._started:
            return
        self._started = True
        self.own(self._receive_loop(self.inbox, self._on_inbound))
        self.own(self._receive_loop(self.reply_channel, self._on_reply))

    # -- outgoing -----------------------------------------------------------------------------

    def _outbox(self, channel: str) -> Outbox:
        outbox = self._outboxes.get(channel)
        if outbox is None:
            outbox = self._outboxes[channel] = Outbox(self, channel)
        return outbox

    def node_channel(self, node: str) -> str:
        channel = self._channels.get(node)
        if channel is None:
            channel = self._channels[node] = channel_name(self.prefix, "node", node)
        return channel

    def _encode(
        self, kind: int, pid: PID, msg: Any, sender: ActorRef | None, corr: int = 0
    ) -> bytes:
        type_name, body = encode_message(msg)
        return encode_wire(
            Wire(
                kind,
                target=pid.id,
                type=type_name,
                body=body,
                corr=corr,
                reply_to=self.reply_channel if kind == ASK else "",
                sender="" if sender is None else str(sender.pid),
            )
        )

    def tell(self, pid: PID, msg: Any, sender: ActorRef | None) -> None:
        self._outbox(self.node_channel(pid.node)).offer(self._encode(TELL, pid, msg, sender))

    async def send(self, pid: PID, msg: Any, sender: ActorRef | None) -> None:
        await self._outbox(self.node_channel(pid.node)).put(self._encode(TELL, pid, msg, sender))

    async def ask(
        self,
        pid: PID,
        msg: Any,
        timeout: float | None,  # noqa: ASYNC109 - mirrors ActorRef.ask
        sender: ActorRef | None,
    ) -> Any:
        loop = self.system.loop
        corr = next(self._corr)
        payload = self._encode(ASK, pid, msg, sender, corr)
        fut: asyncio.Future[Any] = loop.create_future()
        self._pending[corr] = (fut, pid)
        try:
            outbox = self._outbox(self.node_channel(pid.node))
            if timeout is None:
                await outbox.put(payload)
            else:
                self.system.deadlines.watch(fut, pid, msg, timeout)
                try:
                    async with asyncio.timeout(timeout):
                        await outbox.put(payload)
                except TimeoutError:
                    raise AskTimeout(pid, type(msg).__name__, timeout) from None
            return await fut
        finally:
            self._pending.pop(corr, None)

    # -- incoming -----------------------------------------------------------------------------

    async def _receive_loop(self, channel: str, handle: Any) -> None:
        layer = self.layer
        failures = 0
        while True:
            try:
                message = await layer.receive(channel)
            except Exception as exc:
                failures += 1
                if self._receive_errors.ready():
                    logger.warning("receive on %s failed (%r); retrying", channel, exc)
                await asyncio.sleep(min(0.05 * 2**failures, RECEIVE_RETRY_MAX_S))
                continue
            failures = 0
            try:
                handle(decode_wire(message["p"]))
            except Exception:
                logger.exception("dropping malformed message on %s", channel)

    def _on_inbound(self, wire: Wire) -> None:
        self.received += 1
        system = self.system
        if wire.kind == ASK:
            reply = functools.partial(self._send_reply, wire.reply_to, wire.corr)
            fut: asyncio.Future[Any] = system.loop.create_future()
            fut.add_done_callback(reply)
        try:
            msg = decode_message(wire.type, wire.body)
        except Exception as exc:
            logger.error("cannot decode %s for %s: %r", wire.type or "message", wire.target, exc)
            if wire.kind == ASK:
                fut.set_exception(exc)
            return
        sender = system.ref_for(PID.parse(wire.sender)) if wire.sender else None
        cell = system.cell(wire.target)
        if wire.kind == TELL:
            if cell is None:
                system.dead_letters.record(wire.target, msg, "no such actor")
                return
            # A full mailbox is counted by the mailbox; the remote sender cannot be told.
            with contextlib.suppress(MailboxFull):
                cell.tell(msg if sender is None else Envelope(msg, sender))
            return
        if wire.kind != ASK:
            logger.error("unexpected wire kind %d on %s", wire.kind, self.inbox)
            return
        if cell is None:
            system.dead_letters.record(wire.target, msg, "no such actor")
            fut.set_exception(ActorStopped(PID(system.node, wire.target), "no such actor"))
            return
        try:
            if not cell.enqueue_ask(Ask(msg, fut, sender)):
                fut.set_exception(MailboxFull(cell.pid, cell.capacity))
        except ActorStopped as exc:
            fut.set_exception(exc)

    def _send_reply(self, channel: str, corr: int, fut: asyncio.Future[Any]) -> None:
        if fut.cancelled():
            return
        exc = fut.exception()
        if exc is None:
            try:
                type_name, body = encode_message(fut.result())
                wire = Wire(REPLY, type=type_name, body=body, corr=corr)
            except TypeError as bad:
                wire = Wire(ERROR, body=encode_error(bad), corr=corr)
        else:
            wire = Wire(ERROR, body=encode_error(exc), corr=corr)
        try:
            self._outbox(channel).offer(encode_wire(wire))
        except MailboxFull:
            logger.warning("reply outbox to %s is full; the asker will time out", channel)

    def _on_reply(self, wire: Wire) -> None:
        entry = self._pending.pop(wire.corr, None)
        if entry is None:
            return  # the asker gave up (timeout) before the reply arrived
        fut, pid = entry
        if fut.done():
            return
        if wire.kind == REPLY:
            try:
                fut.set_result(decode_message(wire.type, wire.body))
            except Exception as exc:
                fut.set_exception(exc)
            return
        type_name, message = decode_message("", wire.body)
        if type_name == "ActorStopped":
            fut.set_exception(ActorStopped(pid, f"remote: {message}"))
        else:
            fut.set_exception(RemoteError(type_name, message, pid))

    # -- shutdown -----------------------------------------------------------------------------

    async def close(self, deadline: float) -> None:
        loop = self.system.loop
        flushing = [outbox.task for outbox in self._outboxes.values() if outbox.task is not None]
        remaining = deadline - loop.time()
        if flushing and remaining > 0:
            await asyncio.wait(flushing, timeout=remaining)
        tasks = list(self.tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=CANCEL_GRACE_S)
        for corr, (fut, pid) in list(self._pending.items()):
            if not fut.done():
                fut.set_exception(ActorStopped(pid, "actor system shut down"))
            self._pending.pop(corr, None)

    def stats(self) -> dict[str, int]:
        return {
            "remote_sent": self.sent,
            "remote_received": self.received,
            "remote_pending_asks": len(self._pending),
        }


class RemoteActorRef(ActorRef):
    """Reference to an actor on another node; delivery goes through the transport."""

    __slots__ = ("_transport",)

    def __init__(self, pid: PID, transport: RemoteTransport) -> None:
        self.pid = pid
        self._transport = transport

    def tell(self, msg: Any, sender: ActorRef | None = None) -> None:
        self._transport.tell(self.pid, msg, sender)

    async def send(self, msg: Any, sender: ActorRef | None = None) -> None:
        await self._transport.send(self.pid, msg, sender)

    async def ask(
        self,
        msg: Any,
        timeout: float | None = DEFAULT_ASK_TIMEOUT_S,  # noqa: ASYNC109 - API per spec
        sender: ActorRef | None = None,
    ) -> Any:
        return await self._transport.ask(self.pid, msg, timeout, sender)

"""`GameClient`: the asyncio connection, its background tasks and the reconnect loop.

The bookkeeping (dedupe, acks, heartbeat, requests, policy) lives in `_stream` and is
tested without a server; this module only wires it to a `websockets` connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any, Final, TypeAlias, cast

import msgspec
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus, WebSocketException
from websockets.typing import Origin, Subprotocol

from gameproto import (
    DEFAULT_CODEC,
    JSON_CODEC,
    MSGPACK_CODEC,
    UNKNOWN_TYPE,
    Ack,
    ClientMessage,
    CloseCode,
    Codec,
    Ping,
    Pong,
    ProtocolError,
    ServerMessage,
    ServerPing,
    ServerPong,
    Welcome,
    decode_generic,
    decode_server,
    negotiate,
    peek_seq,
)

from ._backoff import Backoff
from ._errors import ClientClosed, ConnectRefused, SequenceGap, SessionLost
from ._stream import (
    DEFAULT_HEARTBEAT_MISSES,
    HeartbeatMonitor,
    InboundStream,
    PendingRequests,
    UnknownMessage,
    build_url,
    should_reconnect,
)

logger = logging.getLogger("gameclient")


class _RedactTickets(logging.Filter):
    """websockets logs the request path at DEBUG; the ticket in it is a bearer credential."""

    _TICKET = re.compile(r"(ticket=)[^&\s]*")

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "ticket=" in message:
            record.msg, record.args = self._TICKET.sub(r"\1[redacted]", message), None
        return True


# The websockets library logs through this logger instead of "websockets.client".
_wire_logger = logging.getLogger("gameclient.websockets")
_wire_logger.addFilter(_RedactTickets())

# Lazy acks (docs/PROTOCOL.md): an ack rides on the next message the app sends; without
# one, a separate ack frame goes this long after the first unacked message (or at once
# when ACK_BATCH_MAX are unacked). Well inside the server's resume and outbox limits.
ACK_INTERVAL_S: Final = 0.25
DEFAULT_REQUEST_TIMEOUT_S: Final = 10.0
OPEN_TIMEOUT_S: Final = 10.0  # TCP + TLS + HTTP upgrade
WELCOME_TIMEOUT_S: Final = 10.0  # the server sends welcome right after accept
# Closing waits for the server's close frame; a dead peer must not stall reconnects.
CLOSE_TIMEOUT_S: Final = 2.0
# Server messages are small; leave room above GAME_MAX_MESSAGE_BYTES for future snapshots.
MAX_MESSAGE_BYTES: Final = 1024 * 1024
# Only a connection that lived this long resets the backoff, so a server that accepts and
# immediately drops us is still retried with growing delays.
STABLE_CONNECTION_S: Final = 5.0
# Client close code when the server skipped a seq; not 1000, so the session stays resumable.
CLOSE_PROTOCOL_ERROR: Final = 1002

_CODECS: Final = {"json": JSON_CODEC, "msgpack": MSGPACK_CODEC}
# Failures of one connect attempt that are worth retrying after a backoff delay.
_RETRYABLE: Final = (
    OSError, TimeoutError, WebSocketException, ProtocolError, SequenceGap, ConnectRefused,
)  # fmt: skip

Pushed: TypeAlias = ServerMessage | UnknownMessage
_END: Final = object()  # inbox sentinel: the client is closed


class GameClient:
    """One player's connection to `/ws/game/`, kept alive and resumed across drops.

    ticket_provider: async callable returning a fresh ticket for each (re)connect.
    codec: "json", "msgpack" or a protocol `Codec`.
    source_address: local IP to bind (e.g. 127.0.0.N to spread load-test connections).
    max_reconnect_attempts: consecutive failed reconnects before giving up (None: never).

    Server pushes (and each `welcome`, so the app can resync after `resumed: false`) are
    read with `await client.recv()` or `async for msg in client`.
    """

    def __init__(
        self,
        url: str,
        ticket_provider: Callable[[], Awaitable[str]],
        *,
        codec: str | Codec = "json",
        source_address: str | None = None,
        backoff: Backoff | None = None,
        max_reconnect_attempts: int | None = None,
        heartbeat_misses: int = DEFAULT_HEARTBEAT_MISSES,
        ack_interval_s: float = ACK_INTERVAL_S,
        origin: str | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._url = url
        self._ticket_provider = ticket_provider
        self._codec = codec if isinstance(codec, Codec) else _CODECS[codec]
        self._source_address = source_address
        self._backoff = backoff or Backoff()
        self._max_reconnect_attempts = max_reconnect_attempts
        self._heartbeat_misses = heartbeat_misses
        self._ack_interval_s = ack_interval_s
        self._origin = origin
        self._sleep = sleep
        self._clock = clock

        self._stream = InboundStream()
        self._pending = PendingRequests()
        self._inbox: asyncio.Queue[Any] = asyncio.Queue()
        self._ack_wakeup = asyncio.Event()  # a first message is unacked
        self._ack_urgent = asyncio.Event()  # ACK_BATCH_MAX messages are unacked
        # Set and replaced on every connect/disconnect/close, so waiters re-check state.
        self._changed = asyncio.Event()
        self._closed = asyncio.Event()
        self._ws: ClientConnection | None = None
        self._wire_codec: Codec = self._codec
        self._heartbeat: HeartbeatMonitor | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._closing = False
        self.welcome: Welcome | None = None
        self.session_id: str | None = None
        # After a `restored` resume: (the welcome's last_seq, ids of requests sent before).
        self._orphans: tuple[int, set[int | str]] | None = None
        self.close_code: int | None = None  # of the last connection that ended

    # --- public API ----------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._ws is not None

    @property
    def last_seq(self) -> int:
        """Highest seq delivered to the app in the current session."""
        return self._stream.delivered

    async def connect(self) -> Welcome:
        """Open the first connection (errors propagate), then keep it alive in the background."""
        if self._supervisor is not None or self._closing:
            raise RuntimeError("connect() may be called once")
        ws, welcome = await self._open()
        self._supervisor = asyncio.create_task(self._supervise(ws))  # owned by GameClient.close
        return welcome

    async def __aenter__(self) -> GameClient:
        await self.connect()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def send(self, msg: ClientMessage) -> None:
        """Send without waiting for a reply, once connected (waits through reconnects)."""
        await self._send(msg)

    async def request(
        self,
        msg: ClientMessage,
        *,
        # The contract's API is request(msg, timeout=...); the deadline covers both
        # waiting for a connection and the reply, which a caller's own timeout would too.
        timeout: float = DEFAULT_REQUEST_TIMEOUT_S,  # noqa: ASYNC109
    ) -> ServerMessage:
        """Send `msg` with an `id` and return the reply carrying `re` == that id.

        An `error` reply raises GameError; no reply within `timeout` raises TimeoutError.
        """
        req_id = msg.id if msg.id is not None else self._pending.new_id()
        future = self._pending.add(req_id)
        try:
            async with asyncio.timeout(timeout):
                await self._send(msgspec.structs.replace(msg, id=req_id))
                self._pending.mark_sent(req_id)
                return await future
        finally:
            self._pending.discard(req_id)

    async def recv(self) -> Pushed:
        """The next server push; raises ClientClosed once the client is closed."""
        item = await self._inbox.get()
        if item is _END:
            self._inbox.put_nowait(_END)  # every later recv() sees the end too
            raise ClientClosed("client closed", self.close_code)
        return cast(Pushed, item)

    def __aiter__(self) -> GameClient:
        return self

    async def __anext__(self) -> Pushed:
        try:
            return await self.recv()
        except ClientClosed:
            raise StopAsyncIteration from None

    async def close(self) -> None:
        """Close with 1000, which ends the session on the server (not resumable)."""
        first_call = not self._closing
        self._closing = True
        try:
            ws = self._ws
            if first_call and ws is not None:
                await ws.close(CloseCode.NORMAL)
            supervisor = self._supervisor
            if supervisor is not None:
                # Let it wind down on its own after the close; cancel if it is stuck
                # (e.g. sleeping before a reconnect).
                await asyncio.wait([supervisor], timeout=CLOSE_TIMEOUT_S)
                supervisor.cancel()
                await asyncio.gather(supervisor, return_exceptions=True)
        finally:
            self._finish()

    # --- connection lifecycle ------------------------------------------------------------

    async def _open(self) -> tuple[ClientConnection, Welcome]:
        ticket = await self._ticket_provider()
        resume = self.session_id
        url = build_url(self._url, ticket, resume=resume, last_seq=self._stream.delivered)
        extra: dict[str, Any] = {}
        if self._source_address is not None:
            extra["local_addr"] = (self._source_address, 0)
        try:
            ws = await self._connect(url, extra)
        except InvalidStatus as exc:
            raise _refusal(exc) from exc
        try:
            chosen = negotiate([ws.subprotocol]) if ws.subprotocol else DEFAULT_CODEC
            if chosen is None:
                raise ProtocolError("bad_message", f"server chose subprotocol {ws.subprotocol}")
            self._wire_codec = chosen
            async with asyncio.timeout(WELCOME_TIMEOUT_S):
                frame = await ws.recv()
            msg = self._decode(frame)
            if not isinstance(msg, Welcome):
                raise ProtocolError("bad_message", "expected welcome")
        except BaseException:
            await ws.close(CloseCode.GOING_AWAY)
            raise
        self._on_welcome(msg)
        self._set_ws(ws)  # usable (and closable by close()) before its tasks start
        return ws, msg

    async def _connect(self, url: str, extra: dict[str, Any]) -> ClientConnection:
        return await connect(
            url,
            subprotocols=[Subprotocol(self._codec.name)],
            origin=Origin(self._origin) if self._origin is not None else None,
            compression=None,  # the server never negotiates it
            ping_interval=None,  # the protocol has its own heartbeat
            open_timeout=OPEN_TIMEOUT_S,
            close_timeout=CLOSE_TIMEOUT_S,
            max_size=MAX_MESSAGE_BYTES,
            proxy=None,
            logger=_wire_logger,
            **extra,
        )

    def _settle_orphans(self) -> None:
        orphans = self._orphans
        if orphans is not None and self._stream.delivered >= orphans[0]:
            self._orphans = None
            self._pending.fail_ids(orphans[1], SessionLost())

    def _on_welcome(self, msg: Welcome) -> None:
        if msg.resumed:
            self._stream.on_resumed()
            self._ack_wakeup.set()
            if msg.restored:
                # Restored on another node: replies not replayed up to last_seq are lost
                # (docs/PROTOCOL.md, the loss window); fail those requests once it is reached.
                self._orphans = (msg.last_seq, self._pending.sent_ids())
                self._settle_orphans()
        else:
            if self.session_id is not None:
                # Replies to requests sent on the old session will never come.
                self._pending.fail_sent(SessionLost())
            self._stream.reset()
        self.session_id = msg.session_id
        self.welcome = msg
        self._heartbeat = HeartbeatMonitor(
            msg.heartbeat_s, self._clock(), misses=self._heartbeat_misses
        )
        self._inbox.put_nowait(msg)

    async def _supervise(self, ws: ClientConnection) -> None:
        try:
            while True:
                started = self._clock()
                self.close_code = await self._run_connection(ws)
                if self._closing or not should_reconnect(self.close_code):
                    return
                if self._clock() - started >= STABLE_CONNECTION_S:
                    self._backoff.reset()
                ws = await self._reconnect()
        except ClientClosed:
            return
        finally:
            self._finish()

    async def _reconnect(self) -> ClientConnection:
        failures = 0
        while True:
            await self._sleep(self._backoff.next_delay())
            try:
                ws, _ = await self._open()
            except Exception as exc:  # incl. ticket_provider failures: all count as attempts
                failures += 1
                level = logging.INFO if isinstance(exc, _RETRYABLE) else logging.WARNING
                reason = exc.code if isinstance(exc, ConnectRefused) else type(exc).__name__
                logger.log(level, "reconnect attempt failed: %s", reason)
                limit = self._max_reconnect_attempts
                if limit is not None and failures >= limit:
                    raise ClientClosed("gave up reconnecting", self.close_code) from exc
                continue
            return ws

    async def _run_connection(self, ws: ClientConnection) -> int | None:
        """Serve one connection until it ends (or the client closes); returns its close code."""
        self._set_ws(ws)
        tasks = [
            asyncio.create_task(self._read_loop(ws)),  # owned by _run_connection
            asyncio.create_task(self._ack_loop(ws)),  # owned by _run_connection
            asyncio.create_task(self._watchdog(ws)),  # owned by _run_connection
        ]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            # Also runs when close() cancels us: the socket must still be closed, with
            # 1000 only when the app asked to end the session.
            self._set_ws(None)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await ws.close(self._close_code_for(tasks))
        return ws.close_code

    def _close_code_for(self, tasks: list[asyncio.Task[None]]) -> int:
        if self._closing:
            return CloseCode.NORMAL
        watchdog = tasks[2]
        if watchdog.done() and not watchdog.cancelled():
            logger.info("nothing from the server within the heartbeat window; reconnecting")
            return CloseCode.HEARTBEAT_TIMEOUT
        for task in tasks:
            exc = None if task.cancelled() else task.exception()
            if isinstance(exc, SequenceGap):
                logger.warning("server skipped a seq; resuming from %d", self._stream.delivered)
                return CLOSE_PROTOCOL_ERROR
            if exc is not None:
                logger.error("connection task failed; reconnecting", exc_info=exc)
        # Anything but 1000 keeps the session resumable (no-op if already closed).
        return CloseCode.GOING_AWAY

    # --- per-connection tasks ------------------------------------------------------------

    async def _read_loop(self, ws: ClientConnection) -> None:
        try:
            async for frame in ws:
                await self._handle_frame(ws, frame)
        except ConnectionClosed:
            return

    async def _handle_frame(self, ws: ClientConnection, frame: str | bytes) -> None:
        assert self._heartbeat is not None  # set by the welcome before this loop
        self._heartbeat.on_frame(self._clock())  # any frame proves the server alive
        try:
            msg = self._decode(frame)
        except ProtocolError as exc:
            self._handle_undecodable(frame, exc)
            return
        if isinstance(msg, ServerPing):
            await ws.send(self._wire_codec.encode(Pong(ts=msg.ts)))
            return
        if isinstance(msg, Welcome):
            logger.warning("ignoring a second welcome on one connection")
            return
        seq: int | None = getattr(msg, "seq", None)
        if seq is not None:
            if not self._stream.accept(seq):
                return  # duplicate after a resume: the app already has it
            self._ack_due()
        re = getattr(msg, "re", None)
        resolved = re is not None and self._pending.resolve(re, msg)
        if self._orphans is not None:
            self._settle_orphans()
        if resolved:
            return
        if not isinstance(msg, ServerPong):
            self._inbox.put_nowait(msg)

    def _handle_undecodable(self, frame: str | bytes, exc: ProtocolError) -> None:
        text, data = (frame, None) if isinstance(frame, str) else (None, frame)
        seq = peek_seq(self._wire_codec, text, data)
        if seq is not None:
            if not self._stream.accept(seq):
                return
            self._ack_due()
        if exc.code != UNKNOWN_TYPE:
            logger.warning("dropping an undecodable server message: %s", exc.code)
            return
        body = decode_generic(self._wire_codec, text, data)
        self._inbox.put_nowait(UnknownMessage(type=body["type"], seq=seq, body=body))

    def _ack_due(self) -> None:
        self._ack_wakeup.set()
        if self._stream.ack_urgent():
            self._ack_urgent.set()

    async def _ack_loop(self, ws: ClientConnection) -> None:
        stream = self._stream
        while True:
            await self._ack_wakeup.wait()
            self._ack_wakeup.clear()
            if not stream.ack_urgent():
                # One cumulative ack for everything that arrives meanwhile, unless the
                # app sends something first (which carries it) or too many pile up.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._ack_urgent.wait(), self._ack_interval_s)
            self._ack_urgent.clear()
            seq = stream.take_ack()
            if seq is not None:
                try:
                    await ws.send(self._wire_codec.encode(Ack(seq=seq)))
                except ConnectionClosed:
                    return

    async def _watchdog(self, ws: ClientConnection) -> None:
        """Pings a silent server once per interval; returns (ending the connection) when
        nothing arrived from it for the heartbeat window."""
        heartbeat = self._heartbeat
        assert heartbeat is not None
        while True:
            now = self._clock()
            if heartbeat.is_dead(now):
                return
            if heartbeat.ping_due(now):
                heartbeat.on_ping_sent(now)
                try:
                    await ws.send(self._wire_codec.encode(Ping(ts=time.time() * 1000.0)))
                except ConnectionClosed:
                    return  # the read loop sees the close too
                continue
            # Both times move as frames arrive and pings go out: re-check after sleeping.
            await asyncio.sleep(min(heartbeat.deadline, heartbeat.ping_at) - now)

    # --- helpers -------------------------------------------------------------------------

    def _decode(self, frame: str | bytes) -> ServerMessage:
        if isinstance(frame, str):
            return decode_server(self._wire_codec, frame, None)
        return decode_server(self._wire_codec, None, frame)

    async def _send(self, msg: ClientMessage) -> None:
        """Send once connected; a send that hits a dying connection is retried on the next."""
        dead: ClientConnection | None = None
        while True:
            ws = await self._wait_for_connection(other_than=dead)
            out = msg
            if not isinstance(msg, Ack):
                # Piggyback the cumulative ack, taken afresh for each attempt: a retry on a
                # new connection (maybe a new session) must not carry an old session's seq.
                seq = self._stream.take_ack()
                if seq is not None:
                    out = msgspec.structs.replace(msg, ack=seq)
            try:
                await ws.send(self._wire_codec.encode(out))
                return
            except ConnectionClosed:
                dead = ws

    async def _wait_for_connection(self, other_than: ClientConnection | None) -> ClientConnection:
        while True:
            if self._closing:
                raise ClientClosed("client closed", self.close_code)
            ws = self._ws
            if ws is not None and ws is not other_than:
                return ws
            await self._changed.wait()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    def _set_ws(self, ws: ClientConnection | None) -> None:
        self._ws = ws
        self._notify()

    def _finish(self) -> None:
        if self._closed.is_set():
            return
        self._closing = True
        self._closed.set()
        self._ws = None
        self._notify()
        self._pending.fail_all(ClientClosed("client closed", self.close_code))
        self._inbox.put_nowait(_END)


def _refusal(exc: InvalidStatus) -> ConnectRefused:
    """The server's refusal, with the reason from its JSON body when it sent one."""
    response = exc.response
    status = int(response.status_code)
    code, message = f"http_{status}", ""
    if response.headers.get("Content-Type", "").startswith("application/json"):
        try:
            error = msgspec.json.decode(response.body or b"{}").get("error") or {}
            code = str(error.get("code") or code)
            message = str(error.get("message") or "")
        except (msgspec.DecodeError, AttributeError):
            pass
    return ConnectRefused(status, code, message)

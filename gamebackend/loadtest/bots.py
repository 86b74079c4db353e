"""Load bots: many raw protocol clients in one process, with honest latency figures.

Each bot is one ``wire.WsClient`` (a bare asyncio protocol: no task per bot). Sends are
open-loop: every bot has its own schedule (``rate`` per second from a random phase) and
sends when a request is due whether or not earlier ones were answered; latency is taken
from the *scheduled* send time to the reply (matched by ``id``/``re``), so a stalled
server or a late loop shows up in the figures instead of silently slowing the senders.
With ``closed_loop`` a bot instead sends its next request as soon as the reply arrives
(the maximum-throughput measurement; every bot starts once all are connected, and a
rate-limited reply is retried after its ``retry_after_ms``).

The engine owns a handful of tasks (connect workers, the ack sweep, the progress line)
and cancels and awaits them on exit. Importable without Django settings.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import re
import secrets
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import IO, Any, Final
from urllib.parse import urlsplit

import msgspec

from gamebackend.loadtest import wire
from gamebackend.loadtest.stats import RunStats
from gameproto.codes import REFUSED_TOO_MANY_CONNECTIONS
from gameproto.tickets import DEFAULT_TICKET_TTL_S, mint_ticket

# Lazy acks, as the SDK (docs/PROTOCOL.md): piggybacked on the next request when there is
# one in time, else a separate ack frame ACK_INTERVAL_S after the first unacked message,
# or at once when ACK_URGENT messages are unacked (well inside the 1,024 outbox).
ACK_INTERVAL_S: Final = 0.25
ACK_URGENT: Final = 256
# Bots waiting to ack sit in a wheel of this many slots, one visited per
# ACK_INTERVAL_S / ACK_SLOTS: one timer for all bots instead of one per bot, and acks
# spread over time rather than in synchronised bursts.
ACK_SLOTS: Final = 20
ACK_STEP_S: Final = ACK_INTERVAL_S / ACK_SLOTS
PROGRESS_INTERVAL_S: Final = 1.0
# TCP connect + upgrade + welcome; a server this slow to accept counts as a failure.
CONNECT_TIMEOUT_S: Final = 10.0
# Handshakes in flight at once: Daphne (Twisted) listens with a backlog of 50, and a
# burst beyond it only turns into SYN retransmits one second later.
DEFAULT_CONNECT_CONCURRENCY: Final = 48
# After the load window, replies still in flight get this long to arrive.
DRAIN_TIMEOUT_S: Final = 3.0
# Closing handshakes of every bot together must finish within this, then we abort.
CLOSE_ALL_TIMEOUT_S: Final = wire.CLOSE_TIMEOUT_S + 3.0
GUEST_API_TIMEOUT_S: Final = 10.0
# The tickets we mint only need to outlive the upgrade (and a few rate-limited retries).
TICKET_TTL_S: Final = DEFAULT_TICKET_TTL_S  # the longest lifetime a node accepts
# A guest ticket is reused for retries while it is this young (each guest call makes a new
# player; the gateway checks ws.connect before the ticket, so a refused upgrade spends none).
GUEST_TICKET_REUSE_S: Final = 10.0
# How long one bot keeps retrying a connect the server rate-limited, each retry after the
# server's retry_after_ms. A fresh single node admits 10 connects/s per IP after a burst of
# 20, so even the bots at the back of a 1000-player queue get their turn well within this.
DEFAULT_CONNECT_RETRY_S: Final = 60.0
# Retry hint assumed when a rate-limited answer carries none.
DEFAULT_RETRY_AFTER_S: Final = 1.0
# Resources whose rate limits the bots meet while connecting (docs/FLOW.md).
CONNECT_RESOURCE: Final = "ws.connect"
GUEST_RESOURCE: Final = "http.auth.guest"
CLOSE_RATE_LIMITED: Final = 4429
HTTP_TOO_MANY_REQUESTS: Final = 429
_RETRY_AFTER_MS = re.compile(r"retry_after_ms=(\d+)")
# --spread-sources: 127.0.0.2 .. 127.0.0.254 (all of 127/8 is loopback on Linux).
SOURCE_FIRST: Final = 2
SOURCE_COUNT: Final = 253
# Moves stay well inside the default world (0..10000).
MOVE_SPAN: Final = 1000

CODECS: Final = {
    "json": ("game.v1.json", wire.OP_TEXT),
    "msgpack": ("game.v1.msgpack", wire.OP_BINARY),
}


class Incoming(msgspec.Struct):
    """The fields a bot looks at in any server message; the rest is skipped unparsed."""

    type: str = ""
    seq: int | None = None
    re: int | str | None = None
    id: int | str | None = None  # echo baseline: the echoed request's own id
    ts: int | float | None = None
    code: str | None = None
    retry_after_ms: int | None = None


@dataclass(frozen=True)
class Config:
    url: str
    players: int
    rate: float = 0.0  # requests per second per bot; 0: idle (heartbeats and acks only)
    duration_s: float = 10.0
    ramp_s: float = 0.0
    spread_sources: bool = False
    codec: str = "json"
    jwt_secret: str | None = None
    closed_loop: bool = False
    echo: bool = False  # baseline server that echoes frames: no ticket, welcome, seq
    connect_concurrency: int = DEFAULT_CONNECT_CONCURRENCY
    player_prefix: str | None = None  # player ids are <prefix>-<index>; default: random
    ticket_ttl_s: float = TICKET_TTL_S
    connect_retry_s: float = DEFAULT_CONNECT_RETRY_S  # 0: a rate-limited connect fails


class RateLimited(Exception):
    """The server refused a connect step over ``resource``'s limit; retry after a while."""

    def __init__(self, resource: str, retry_after_s: float) -> None:
        super().__init__(f"rate_limited ({resource})")
        self.resource = resource
        self.retry_after_s = retry_after_s


class ConnectFailed(Exception):
    """A connect step failed for good; ``cause`` is what the summary counts."""

    def __init__(self, cause: str) -> None:
        super().__init__(cause)
        self.cause = cause


class Pacer:
    """Once the server rate-limits a source, its attempts go one at a time, each no earlier
    than the server said a retry could succeed, and after an admitted one, one hint later
    (the token it took was the last): a refused connect costs the server an accept and a
    close, so a herd of bots retrying together would mostly buy refusals."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.limited = False
        self.next_at = 0.0
        self.interval_s = 0.0  # the last retry hint: about one token's refill time
        self.lock = asyncio.Lock()

    @contextlib.asynccontextmanager
    async def turn(self) -> AsyncIterator[None]:
        if not self.limited:
            yield
            return
        async with self.lock:
            delay = self.next_at - self.loop.time()
            if delay > 0:
                await asyncio.sleep(delay)  # the server's retry hint, not synchronisation
            yield

    def refused(self, retry_after_s: float) -> None:
        self.limited = True
        # A hint counts from the bucket's current fraction of a token; the longest one seen
        # (from an empty bucket) is the refill time of one whole token.
        self.interval_s = max(self.interval_s, retry_after_s)
        self.next_at = max(self.next_at, self.loop.time() + retry_after_s)

    def admitted(self) -> None:
        if self.limited:
            self.next_at = max(self.next_at, self.loop.time() + self.interval_s)


class Bot(wire.WsClient):
    __slots__ = (
        "ack_queued",
        "acked",
        "due",
        "engine",
        "last_seq",
        "next_id",
        "pending",
        "sending",
        "timer",
        "unacked_since",
        "welcomed",
    )

    def __init__(self, engine: Engine, host: str, port: int, resource: str) -> None:
        super().__init__(host, port, resource, engine.subprotocol)
        self.engine = engine
        self.last_seq = 0
        self.acked = 0
        self.ack_queued = False  # in the engine's ack wheel
        self.unacked_since = 0.0  # when the oldest unacked message arrived
        self.next_id = 0
        self.pending: dict[int, float] = {}  # request id -> scheduled send time
        self.due = 0.0
        self.sending = False
        self.timer: asyncio.TimerHandle | None = None
        self.welcomed = False

    # A game connection is ready at its welcome; an echo one right after the upgrade.
    ready_on_upgrade = False

    def on_open(self) -> None:
        if self.engine.config.echo:
            self._welcomed()

    def _welcomed(self) -> None:
        if not self.welcomed:
            self.welcomed = True
            self.set_ready()
            self.engine.bot_ready(self)

    def on_message(self, opcode: int, payload: bytes) -> None:
        engine = self.engine
        stats = engine.stats
        stats.received += 1
        try:
            msg = engine.decoder.decode(payload)
        except msgspec.DecodeError:
            stats.errors["undecodable_reply"] += 1
            return
        seq = msg.seq
        if seq is not None and seq > self.last_seq:
            if self.last_seq == self.acked:
                self.unacked_since = engine.loop.time()
                if not self.ack_queued:
                    self.ack_queued = True
                    engine.to_ack[engine.ack_cursor].append(self)
            self.last_seq = seq
            if seq - self.acked >= ACK_URGENT:
                self.ack()
        kind = msg.type
        if kind == "state" or kind == "ok":
            if msg.re is not None:
                self._answered(msg.re, error=False)
        elif kind == "ping":
            self.send(engine.opcode, engine.encode({"type": "pong", "ts": msg.ts}))
            stats.sent += 1
            stats.pings_answered += 1
        elif kind == "error":
            stats.errors[msg.code or "?"] += 1
            if msg.re is not None:
                self._answered(msg.re, error=True, retry_after_ms=msg.retry_after_ms)
        elif kind == "welcome":
            self._welcomed()
        elif kind == "move" and engine.config.echo and msg.id is not None:
            self._answered(msg.id, error=False)

    def _answered(
        self, req_id: int | str, *, error: bool, retry_after_ms: int | None = None
    ) -> None:
        scheduled = self.pending.pop(req_id, None) if isinstance(req_id, int) else None
        if scheduled is None:
            return  # not ours, or sent before the window and already forgotten
        engine = self.engine
        stats = engine.stats
        now = engine.loop.time()
        if scheduled >= engine.window_start:  # requests of the warm-up are not reported
            if error:
                stats.error_replies += 1
            else:
                stats.answered += 1
                stats.latency.record(now - scheduled)
        engine.outstanding -= 1
        if engine.outstanding == 0 and engine.drained is not None:
            engine.drained.set()
        if engine.config.closed_loop and self.sending:
            if retry_after_ms:
                # Rate-limited: wait as told, as the SDK does. Sending again at once would
                # turn one rejection into a flood of them (and the node's 4429 close).
                self.timer = engine.loop.call_later(retry_after_ms / 1000, self._retry)
            else:
                self.request(now)

    def _retry(self) -> None:
        self.timer = None
        if self.sending and self.state == wire.OPEN:
            self.request(self.engine.loop.time())

    def request(self, scheduled: float) -> None:
        engine = self.engine
        self.next_id += 1
        req_id = self.next_id
        x = (req_id * 7919) % MOVE_SPAN  # changes every time, so every move bumps rev
        move: dict[str, Any] = {"type": "move", "x": x, "y": x, "id": req_id}
        if self.last_seq > self.acked:
            # Piggyback the cumulative ack, as the SDK does: no separate ack frame.
            self.acked = move["ack"] = self.last_seq
        self.send(engine.opcode, engine.encode(move))
        self.pending[req_id] = scheduled
        engine.outstanding += 1
        engine.stats.sent += 1
        if scheduled >= engine.window_start:
            engine.stats.requests += 1

    def tick(self) -> None:
        """Open-loop schedule: send the due request, book the next one."""
        self.timer = None
        if not self.sending or self.state != wire.OPEN:
            return
        self.request(self.due)
        self.due += self.engine.interval
        self.timer = self.engine.loop.call_at(self.due, self.tick)

    def start_sending(self) -> None:
        engine = self.engine
        self.sending = True
        if engine.config.closed_loop:
            self.request(engine.loop.time())
        elif engine.interval > 0:
            self.due = engine.loop.time() + random.random() * engine.interval
            self.timer = engine.loop.call_at(self.due, self.tick)

    def stop_sending(self) -> None:
        self.sending = False
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def ack(self) -> None:
        if self.last_seq > self.acked and self.state == wire.OPEN:
            self.acked = self.last_seq
            self.send(self.engine.opcode, self.engine.encode({"type": "ack", "seq": self.acked}))
            self.engine.stats.sent += 1
            self.engine.stats.acks_sent += 1

    def on_closed(self, code: int) -> None:
        self.stop_sending()
        self.engine.bot_closed(self, code)


class Engine:
    def __init__(self, config: Config, *, out: IO[str] | None = None, as_json: bool = False):
        parts = urlsplit(config.url)
        if parts.scheme != "ws" or not parts.hostname:
            raise ValueError("url must be ws://host:port/path (TLS is not supported)")
        self.config = config
        self.host = parts.hostname
        self.port = parts.port or 80
        self.path = parts.path or "/"
        self.query = parts.query
        self.http_base = f"http://{self.host}:{self.port}"
        subprotocol, self.opcode = CODECS[config.codec]
        # The echo baseline speaks no subprotocol; the gateway gets the codec's.
        self.subprotocol: str | None = None if config.echo else subprotocol
        if config.codec == "msgpack":
            self.encode: Any = msgspec.msgpack.Encoder().encode
            self.decoder: Any = msgspec.msgpack.Decoder(Incoming)
        else:
            self.encode = msgspec.json.Encoder().encode
            self.decoder = msgspec.json.Decoder(Incoming)
        self.interval = 1.0 / config.rate if config.rate > 0 else 0.0
        self.stats = RunStats(players=config.players)
        self.player_prefix = config.player_prefix or f"bot-{secrets.token_hex(4)}"
        self.bots: set[Bot] = set()
        self.pacers: dict[tuple[str, ...], Pacer] = {}
        self.to_ack: list[list[Bot]] = [[] for _ in range(ACK_SLOTS)]
        # The slot visited last: a bot queued there is visited a whole interval later.
        self.ack_cursor = 0
        self.outstanding = 0
        self.window_start = float("inf")
        self.drained: asyncio.Event | None = None
        self.stop_requested = asyncio.Event()
        # Set when every connection attempt has finished and the measured window begins.
        self.window_started = asyncio.Event()
        self.loop = asyncio.get_running_loop()
        self.out = out
        self.as_json = as_json
        self._tasks: set[asyncio.Task[Any]] = set()
        self._sending = False
        self._closing = False
        self.all_closed: asyncio.Event | None = None
        self._last_progress = (0.0, 0, 0)
        self._t0 = self.loop.time()

    # --- bots' callbacks -------------------------------------------------------------

    def bot_ready(self, bot: Bot) -> None:
        stats = self.stats
        stats.connected += 1
        stats.held += 1
        stats.peak_held = max(stats.peak_held, stats.held)
        info = wire.connection_info(bot.transport)
        if info is not None:
            stats.local_addresses[info[0]] += 1
        if self._sending:
            bot.start_sending()

    def bot_closed(self, bot: Bot, code: int) -> None:
        self.bots.discard(bot)
        self.outstanding -= len(bot.pending)
        bot.pending.clear()
        if bot.welcomed:
            self.stats.held -= 1
            if not self._closing:
                self.stats.closes[code] += 1
        if self.drained is not None and self.outstanding <= 0:
            self.drained.set()
        if not self.bots and self.all_closed is not None:
            self.all_closed.set()

    # --- connecting ------------------------------------------------------------------

    def _pacer(self, *key: str) -> Pacer:
        pacer = self.pacers.get(key)
        if pacer is None:
            pacer = self.pacers[key] = Pacer(self.loop)
        return pacer

    async def _ticket(self, index: int) -> str:
        if self.config.jwt_secret:
            sub = f"{self.player_prefix}-{index}"
            return mint_ticket(
                secret=self.config.jwt_secret, sub=sub, ttl_s=self.config.ticket_ttl_s
            )
        pacer = self._pacer(GUEST_RESOURCE)
        async with pacer.turn():
            try:
                ticket = await asyncio.to_thread(_guest_ticket, self.http_base)
            except RateLimited as limited:
                pacer.refused(limited.retry_after_s)
                raise
            pacer.admitted()
            return ticket

    def _source(self, index: int) -> tuple[str, int] | None:
        if not self.config.spread_sources:
            return None
        return (f"127.0.0.{SOURCE_FIRST + index % SOURCE_COUNT}", 0)

    async def _open_one(self, index: int) -> None:
        """Connect bot ``index``, retrying rate-limited steps after the server's hint for up
        to ``connect_retry_s``; a failure is counted by its cause."""
        stats = self.stats
        stats.connect_attempts += 1
        first_try = self.loop.time()
        ticket: tuple[str, float] | None = None  # (ticket, when it was obtained)
        while True:
            try:
                now = self.loop.time()
                if ticket is None or (
                    not self.config.jwt_secret and now - ticket[1] > GUEST_TICKET_REUSE_S
                ):
                    ticket = ("", now) if self.config.echo else (await self._ticket(index), now)
                await self._upgrade(index, ticket[0])
                return
            except RateLimited as limited:
                cause = f"rate_limited ({limited.resource})"
                waited = self.loop.time() - first_try
                if (
                    waited + limited.retry_after_s > self.config.connect_retry_s
                    or self.stop_requested.is_set()
                ):
                    stats.connect_failures[cause] += 1
                    return
                stats.connect_retries[cause] += 1
                if self.config.jwt_secret:
                    ticket = None  # minting is free: every attempt gets a fresh one
            except ConnectFailed as failed:
                stats.connect_failures[failed.cause] += 1
                return

    async def _upgrade(self, index: int, ticket: str) -> None:
        """One upgrade; raises RateLimited or ConnectFailed, returns once welcomed."""
        resource = self.path
        if not self.config.echo:
            query = f"{self.query}&" if self.query else ""
            resource = f"{self.path}?{query}ticket={ticket}"
        elif self.query:
            resource = f"{self.path}?{self.query}"
        source = self._source(index)
        pacer = self._pacer(CONNECT_RESOURCE, source[0] if source else "")
        bot: Bot | None = None
        async with pacer.turn():
            try:
                async with asyncio.timeout(CONNECT_TIMEOUT_S):
                    _, bot = await self.loop.create_connection(
                        lambda: Bot(self, self.host, self.port, resource),
                        self.host,
                        self.port,
                        local_addr=source,
                    )
                    self.bots.add(bot)
                    try:
                        await bot.opened
                    except BaseException:
                        bot.abort()
                        raise
            except wire.ClosedBeforeReady:
                # Upgraded, then closed before the welcome: over the per-IP connect limit
                # (4429 with retry_after_ms), or e.g. the server shutting down.
                code = bot.close_code if bot is not None else None
                if code == CLOSE_RATE_LIMITED and bot is not None:
                    retry_s = _retry_after_s(bot.close_reason)
                    pacer.refused(retry_s)
                    raise RateLimited(CONNECT_RESOURCE, retry_s) from None
                raise ConnectFailed(f"closed_{code}_before_welcome") from None
            except TimeoutError:
                raise ConnectFailed("timeout") from None
            except wire.HandshakeFailed as exc:
                if exc.status == HTTP_TOO_MANY_REQUESTS:
                    if _json_error(exc.body).get("code") == REFUSED_TOO_MANY_CONNECTIONS:
                        # The node's cap on connections per address: it does not free up
                        # while the bots hold theirs, so waiting would not help.
                        raise ConnectFailed(REFUSED_TOO_MANY_CONNECTIONS) from None
                    retry_s = _retry_after_header_s(exc.headers.get("retry-after", ""))
                    pacer.refused(retry_s)
                    raise RateLimited(CONNECT_RESOURCE, retry_s) from None
                raise ConnectFailed(f"http_{exc.status}") from None
            except OSError as exc:
                raise ConnectFailed(type(exc).__name__) from None
            pacer.admitted()

    async def _connector(self, queue: list[int], start: float) -> None:
        players = self.config.players
        while queue and not self.stop_requested.is_set():
            index = queue.pop()
            if self.config.ramp_s > 0:
                at = start + self.config.ramp_s * index / players
                delay = at - self.loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)  # pacing the ramp, not synchronisation
            await self._open_one(index)

    # --- periodic work ---------------------------------------------------------------

    async def _ack_loop(self) -> None:
        # Deadlines from the start (no drift): each slot is visited once per interval.
        start = self.loop.time()
        n = 0
        while True:
            n += 1
            await asyncio.sleep(max(0.0, start + n * ACK_STEP_S - self.loop.time()))
            self.visit_ack_slot(n % ACK_SLOTS)

    def visit_ack_slot(self, slot: int) -> None:
        """Ack for the bots of ``slot`` whose oldest unacked message is an interval old."""
        self.ack_cursor = slot
        due, self.to_ack[slot] = self.to_ack[slot], []
        now = self.loop.time()
        for bot in due:
            if bot.last_seq <= bot.acked:
                bot.ack_queued = False  # a request carried the ack meanwhile
            elif now - bot.unacked_since >= ACK_INTERVAL_S - ACK_STEP_S:
                bot.ack_queued = False
                bot.ack()
            else:
                # Unacked again since it was queued (acked by piggyback in between): its
                # interval restarted, so it comes round once more.
                self.to_ack[slot].append(bot)

    async def _progress_loop(self) -> None:
        while True:
            await asyncio.sleep(PROGRESS_INTERVAL_S)
            self.progress()

    def progress(self, *, final: bool = False) -> None:
        if self.out is None:
            return
        s = self.stats
        now = self.loop.time()
        last_t, last_sent, last_recv = self._last_progress
        dt = max(now - last_t, 1e-9) if last_t else PROGRESS_INTERVAL_S
        sent_rate = (s.sent - last_sent) / dt if s.sent >= last_sent else 0.0
        recv_rate = (s.received - last_recv) / dt if s.received >= last_recv else 0.0
        self._last_progress = (now, s.sent, s.received)
        p50, p99 = s.latency.percentile(50), s.latency.percentile(99)
        record = {
            "t": round(now - self._t0, 2),
            "held": s.held,
            "players": s.players,
            "failures": sum(s.connect_failures.values()),
            "closes": sum(s.closes.values()),
            "errors": sum(s.errors.values()),
            "sent_per_s": round(sent_rate, 1),
            "received_per_s": round(recv_rate, 1),
            "p50_ms": None if p50 is None else round(p50 * 1000, 3),
            "p99_ms": None if p99 is None else round(p99 * 1000, 3),
        }
        if self.as_json:
            self.out.write(json.dumps({"progress": record}) + "\n")
        else:
            lat = "-" if p50 is None or p99 is None else f"{p50 * 1000:.2f}/{p99 * 1000:.2f} ms"
            line = (
                f"[{record['t']:7.1f}s] held {s.held}/{s.players} "
                f"fail {record['failures']} closes {record['closes']} "
                f"errors {record['errors']} | sent {sent_rate:,.0f}/s recv {recv_rate:,.0f}/s"
                f" | p50/p99 {lat}"
            )
            tty = self.out.isatty()
            self.out.write(("\r" + line + "\x1b[K") if tty else line + "\n")
        self.out.flush()

    def _spawn(self, coro: Any, name: str) -> asyncio.Task[Any]:
        task = self.loop.create_task(coro, name=name)  # owned by Engine (cancelled in run)
        self._tasks.add(task)
        return task

    # --- the run ---------------------------------------------------------------------

    def open_window(self) -> None:
        """Every connection attempt has finished: the reported window starts now."""
        if self.config.closed_loop:
            self._sending = True
            for bot in list(self.bots):
                if bot.welcomed:
                    bot.start_sending()
        self.stats.reset_window()
        self.window_start = self.loop.time()
        self.window_started.set()

    async def run(self) -> dict[str, Any]:
        config = self.config
        try:
            self._spawn(self._ack_loop(), "loadbots-acks")
            self._spawn(self._progress_loop(), "loadbots-progress")
            # Open-loop bots start sending as soon as they are welcomed; the window (whose
            # figures are reported) starts once every connection attempt has finished.
            # Closed-loop bots all start then: started on welcome, the first few hundred
            # would share the whole server between them, each far above its per-player
            # rate limit (and the node closes a player that keeps hitting it with 4429).
            self._sending = config.rate > 0 and not config.closed_loop
            queue = list(range(config.players - 1, -1, -1))
            start = self.loop.time()
            workers = [
                self._spawn(self._connector(queue, start), f"loadbots-connect-{i}")
                for i in range(max(1, min(config.connect_concurrency, config.players)))
            ]
            await asyncio.gather(*workers)
            self.open_window()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop_requested.wait(), config.duration_s)
            self.stats.window_s = self.loop.time() - self.window_start
            # Stop sending; give replies in flight a bounded time to arrive.
            self._sending = False
            for bot in list(self.bots):
                bot.stop_sending()
            if self.outstanding > 0:
                self.drained = asyncio.Event()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.drained.wait(), DRAIN_TIMEOUT_S)
            for bot in list(self.bots):
                bot.ack()
            summary = self.stats.summary(outstanding=max(0, self.outstanding))
            await self._close_all()
            return summary
        finally:
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            for bot in list(self.bots):
                bot.abort()

    async def _close_all(self) -> None:
        self._closing = True
        if not self.bots:
            return
        self.all_closed = asyncio.Event()
        for bot in list(self.bots):
            bot.close(1000)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.all_closed.wait(), CLOSE_ALL_TIMEOUT_S)

    def request_stop(self) -> None:
        self.stop_requested.set()


def _retry_after_s(close_reason: str) -> float:
    """The retry hint of a 4429 close (``retry_after_ms=N`` in its reason)."""
    match = _RETRY_AFTER_MS.search(close_reason)
    return int(match.group(1)) / 1000.0 if match else DEFAULT_RETRY_AFTER_S


def _retry_after_header_s(value: str) -> float:
    """An HTTP ``Retry-After`` in seconds (dates are not sent by this server)."""
    try:
        return max(0.0, float(value))
    except ValueError:
        return DEFAULT_RETRY_AFTER_S


def _json_error(body: bytes) -> dict[str, Any]:
    """The ``error`` object of a node's JSON error body (empty if it is not one)."""
    try:
        error = json.loads(body).get("error")
    except (ValueError, AttributeError):
        return {}
    return error if isinstance(error, dict) else {}


def _guest_ticket(http_base: str) -> str:
    """A ticket from ``POST /api/auth/guest`` (blocking: run in a thread).

    Raises RateLimited on a 429 (with the server's ``retry_after_ms``) and ConnectFailed
    naming the cause otherwise (the status and the API's error code, or why the server
    could not be reached).
    """
    req = urllib.request.Request(
        f"{http_base}/api/auth/guest",
        data=b"{}",
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(req, timeout=GUEST_API_TIMEOUT_S) as resp:
            return str(json.loads(resp.read())["ticket"])
    except urllib.error.HTTPError as exc:
        try:
            error = _json_error(exc.read())
        except OSError:
            error = {}
        if exc.code == HTTP_TOO_MANY_REQUESTS:
            retry_ms = error.get("retry_after_ms")
            if isinstance(retry_ms, int | float) and retry_ms >= 0:
                raise RateLimited(GUEST_RESOURCE, retry_ms / 1000.0) from None
            retry_s = _retry_after_header_s(exc.headers.get("Retry-After", ""))
            raise RateLimited(GUEST_RESOURCE, retry_s) from None
        code = error.get("code")
        detail = f" ({code})" if code else ""
        raise ConnectFailed(f"guest_api_http_{exc.code}{detail}") from None
    except urllib.error.URLError as exc:
        reason = exc.reason
        name = type(reason).__name__ if isinstance(reason, BaseException) else str(reason)
        raise ConnectFailed(f"guest_api_unreachable ({name})") from None
    except (OSError, ValueError, KeyError) as exc:
        raise ConnectFailed(f"guest_api_bad_answer ({type(exc).__name__})") from None

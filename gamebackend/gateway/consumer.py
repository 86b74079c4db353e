"""The WebSocket consumer: authenticate, bind to the player's actor, relay frames.

It does no game logic. Per frame it decodes (with validation), answers transport
messages (ack, ping, pong) itself and hands everything else to the PlayerActor with a
non-blocking ``tell``; what the actor emits reaches the socket through the session.
"""

from __future__ import annotations

import json
import logging
import time
from collections import deque
from typing import Any
from urllib.parse import parse_qs

import msgspec
from channels.consumer import AsyncConsumer
from channels.db import aclose_old_connections
from channels.exceptions import StopConsumer
from django.conf import settings

import gameproto as p
from actors import ActorRef, MailboxFull
from gamebackend.clientaddr import client_address
from gamebackend.flow.admission import admit
from gamebackend.gateway import metrics_sampler
from gamebackend.gateway.asgi_ext import (
    DEFER_PINGS_KEY,
    DENIAL_EXTENSION,
    PING_EVENT,
    PING_EXTENSION,
    PONG_EVENT,
)
from gamebackend.gateway.heartbeat import wall_ms
from gamebackend.gateway.runtime import get_runtime
from gamebackend.gateway.session import Session
from gamebackend.gateway.tickets import TicketRejected, check_ticket
from gamebackend.metrics import REQUEST_SECONDS

logger = logging.getLogger(__name__)

# More than BAD_FRAME_LIMIT bad_message/invalid/unknown_type errors within
# BAD_FRAME_WINDOW_S closes the connection with 4400.
BAD_FRAME_LIMIT = 10
BAD_FRAME_WINDOW_S = 10.0
MAX_QUERY_VALUE = 4096
# Query parameters an upgrade may carry (ticket, resume, last_seq and room to grow); more is
# refused like any bad upgrade.
MAX_QUERY_FIELDS = 16
# Rate-limit rejections within ABUSE_WINDOW_S beyond GAME_ABUSE_THRESHOLD close with 4429.
ABUSE_WINDOW_S = 10.0
CONNECT_RESOURCE = "ws.connect"
# ping, pong and ack share one per-connection rule instead of per-type rules.
CONTROL_RESOURCE = "ws.control"
_CONTROL_TYPES = (p.Ack, p.Ping, p.Pong)
_resources: dict[type, str] = {}
_tags: dict[type, str] = {}
# Requests whose reply has not been written yet, per connection, for the latency
# histogram; past this many (a client that never reads) the oldest are forgotten.
MAX_TIMED_REQUESTS = 1024
# Messages (direction, type, size) a connection keeps for the console's session page.
RECENT_MESSAGES = 20


class RecentMessage(msgspec.Struct, frozen=True, gc=False):
    """One entry of a connection's recent messages. A ``gc=False`` struct, not a tuple:
    two are made per request and each lives for the next 20 messages, long enough to be
    counted and walked by young collections (a tuple is tracked until one walks it);
    at 3,000 requests a second they were a quarter of the young generation."""

    at: float
    direction: str
    tag: str
    size: int


_UNREMEMBERED = frozenset({"ping", "pong", "ack"})
_messages_in = metrics_sampler.messages_in
_messages_out = metrics_sampler.messages_out
# The latency histogram's child per request type, looked up once (``labels`` locks).
_request_timers: dict[str, Any] = {}


def _observe_request(tag: str, seconds: float) -> None:
    observe = _request_timers.get(tag)
    if observe is None:
        observe = _request_timers[tag] = REQUEST_SECONDS.labels(tag).observe
    observe(seconds)


def tag_of(kind: type) -> str:
    """The wire ``type`` of a message class (cached)."""
    tag = _tags.get(kind)
    if tag is None:
        tag = _tags[kind] = str(kind.__struct_config__.tag)  # type: ignore[attr-defined]
    return tag


def resource_of(kind: type) -> str:
    """The rate-limit resource of a message type: ``ws.<wire type>`` (cached)."""
    name = _resources.get(kind)
    if name is None:
        tag = kind.__struct_config__.tag  # type: ignore[attr-defined]
        name = _resources[kind] = CONTROL_RESOURCE if kind in _CONTROL_TYPES else f"ws.{tag}"
    return name


# A close frame's reason is at most 123 bytes (RFC 6455: 125 minus the code).
MAX_CLOSE_REASON_BYTES = 123
_JSON_HEADERS = [(b"content-type", b"application/json"), (b"cache-control", b"no-store")]
_BAD_FRAME_CODES = frozenset({p.BAD_MESSAGE, p.INVALID, p.UNKNOWN_TYPE})
# Channels' alias for "no channel layer": the consumer must not open a per-connection
# channel-layer receive loop (remote traffic goes to the node's actor system instead).
NO_CHANNEL_LAYER = "gateway-has-no-channel-layer"


class EventWindow:
    """Counts events; over the limit when more than ``limit`` fell within ``window_s``."""

    __slots__ = ("_times", "limit", "window_s")

    def __init__(self, limit: int, window_s: float) -> None:
        self.limit = limit
        self.window_s = window_s
        self._times: deque[float] = deque(maxlen=limit + 1)

    def hit_is_over_limit(self) -> bool:
        now = time.monotonic()
        times = self._times
        times.append(now)
        return len(times) > self.limit and now - times[0] <= self.window_s


def _query(scope: dict[str, Any]) -> dict[str, str] | None:
    """The query parameters (last value wins), or None when there are too many."""
    raw = scope.get("query_string", b"").decode("latin-1")
    try:
        values = parse_qs(raw, keep_blank_values=True, max_num_fields=MAX_QUERY_FIELDS)
    except ValueError:  # more than MAX_QUERY_FIELDS
        return None
    return {key: vals[-1][:MAX_QUERY_VALUE] for key, vals in values.items() if vals}


def _origin(scope: dict[str, Any]) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == b"origin":
            return str(value.decode("latin-1"))
    return None


class GameConsumer(AsyncConsumer):
    channel_layer_alias = NO_CHANNEL_LAYER

    # Per-connection state, slotted by hand (AsyncConsumer has a __dict__ anyway, but
    # fewer attributes mean less memory at tens of thousands of connections).
    session: Session | None = None
    actor: ActorRef | None = None
    codec: p.Codec = p.JSON_CODEC
    hb_slot = 0
    hb_outstanding = 0
    hb_last_ts = 0
    hb_alive = False
    # Created on a connection's first bad frame / rejection: most never have one.
    _bad: EventWindow | None = None
    _abuse: EventWindow | None = None
    _server_close: int | None = None
    _ip = ""
    # Request id -> when it arrived (monotonic), until its reply is written.
    _timed: dict[Any, tuple[float, str]] | None = None
    # For the console's sessions page (gateway/console_report.py): plain counters, a
    # round-trip time from the last answered heartbeat ping, and the last few messages'
    # types and sizes (never their contents), made on the first message.
    connected_at = 0.0
    n_in = 0
    n_out = 0
    n_limited = 0
    rtt_ms: int | None = None
    recent: deque[RecentMessage] | None = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        # Channels' AsyncConsumer.__call__ multiplexes the socket with a channel-layer
        # receive through await_many_dispatch: a new task and an asyncio.wait per message
        # (about a tenth of the CPU of a busy node). This consumer has no channel layer
        # (see NO_CHANNEL_LAYER), so it reads the socket directly; everything else about
        # the consumer (as_asgi, dispatch, send) is Channels'.
        self.scope = scope
        self.channel_layer = None
        self.base_send = send
        try:
            while True:
                await self.dispatch(await receive())
        except StopConsumer:
            pass

    async def dispatch(self, message: dict[str, Any]) -> None:
        # Channels' default dispatch awaits aclose_old_connections() (a thread hop) before
        # every handler, which halves the throughput of a busy socket. This consumer never
        # touches the ORM on the event loop per message, so it routes directly; the one
        # database read (connect) calls aclose_old_connections itself.
        kind = message["type"]
        if kind == "websocket.receive":
            await self._receive(message.get("text"), message.get("bytes"))
        elif kind == "websocket.connect":
            await self._connect()
        elif kind == "websocket.disconnect":
            self._disconnected(int(message.get("code", 1006)))
            raise StopConsumer
        elif kind == PING_EVENT:
            await self._protocol_ping(message["bytes"])
        else:
            raise ValueError(f"unexpected ASGI message {kind!r}")

    # -- connect -------------------------------------------------------------------------

    async def _refuse(self, code: str, message: str) -> None:
        """Refuse the upgrade before accepting: HTTP 403, with a JSON body naming ``code``
        where the server supports the denial-response extension (docs/PROTOCOL.md)."""
        client = self.scope.get("client") or ("?", 0)
        logger.info("ws upgrade from %s refused: %s", self._ip or client[0], code)
        if DENIAL_EXTENSION not in (self.scope.get("extensions") or {}):
            # Closing before accept makes the server answer the upgrade with a bare 403.
            await self.base_send({"type": "websocket.close"})
            return
        body = json.dumps({"error": {"code": code, "message": message}}).encode()
        await self.base_send(
            {"type": "websocket.http.response.start", "status": 403, "headers": _JSON_HEADERS}
        )
        await self.base_send({"type": "websocket.http.response.body", "body": body})

    async def _connect(self) -> None:
        runtime = get_runtime()
        hub = runtime.hub
        # The player's address, not a proxy's (GAME_TRUSTED_PROXIES): every per-IP limit.
        self._ip = client_address(self.scope)
        if not hub.accepting:
            return await self._refuse(p.REFUSED_SHUTTING_DOWN, "the server is shutting down")
        # Checked per IP before the ticket, so floods of bad tickets spend tokens too.
        decision = await admit(CONNECT_RESOURCE, ip=self._ip)
        if decision.rejected:
            # Daphne cannot answer an upgrade with HTTP 429: accept, then close at once.
            await self.base_send({"type": "websocket.accept"})
            return await self.close_with(
                p.CloseCode.RATE_LIMITED, f"retry_after_ms={decision.retry_after_ms}"
            )
        if runtime.flusher.over_bound:
            # The database is behind: admitting more players would grow a backlog that is
            # already at its bound (docs/DURABILITY.md). Accept, then close 1013.
            await self.base_send({"type": "websocket.accept"})
            return await self.close_with(
                p.CloseCode.TRY_AGAIN_LATER, f"flush backlog over {runtime.flusher.max_entities}"
            )
        origin = _origin(self.scope)
        if origin is not None and origin not in settings.GAME_ALLOWED_ORIGINS:
            return await self._refuse(p.REFUSED_ORIGIN, "this Origin may not connect")
        codec = p.negotiate(self.scope.get("subprotocols") or [])
        if codec is None:
            return await self._refuse(
                p.REFUSED_SUBPROTOCOL, f"offer one of: {', '.join(p.SUBPROTOCOLS)}"
            )
        query = _query(self.scope)
        if query is None:
            return await self._refuse(
                p.REFUSED_QUERY, f"at most {MAX_QUERY_FIELDS} query parameters"
            )
        try:
            claims = await check_ticket(
                query.get("ticket", ""),
                secret=settings.GAME_JWT_SECRET,
                store=runtime.replay_store,
                max_age_s=settings.GAME_TICKET_MAX_AGE_S,
                max_lifetime_s=settings.GAME_TICKET_TTL_S,
            )
        except TicketRejected as exc:
            return await self._refuse(
                p.ticket_refusal(exc.reason), f"ticket refused ({exc.reason}); get a fresh one"
            )
        blocked_until = runtime.blocks.until(claims.sub)
        if blocked_until is not None:
            return await self._refuse(
                p.REFUSED_PLAYER_BLOCKED, f"blocked by an operator until {blocked_until}"
            )
        resume_id = query.get("resume") or None
        last_seq: int | None = None
        if resume_id is not None:
            try:
                last_seq = max(0, int(query.get("last_seq", "")))
            except ValueError:
                resume_id = None
        await aclose_old_connections()
        try:
            session, actor, resumed = await hub.attach(
                self, player_id=claims.sub, resume_id=resume_id, last_seq=last_seq
            )
        except Exception:
            # E.g. the database is down while loading the player: say so with 1011
            # (internal error) rather than a 403 that would blame the ticket.
            logger.exception("attaching player %s failed", claims.sub)
            await self.base_send({"type": "websocket.accept"})
            return await self.close_with(p.CloseCode.INTERNAL_ERROR, "server error; retry")
        self.codec = codec
        self.session = session
        self.actor = actor
        offered = self.scope.get("subprotocols") or []
        accept: dict[str, Any] = {
            "type": "websocket.accept",
            "subprotocol": codec.name if offered else None,
        }
        if PING_EXTENSION in (self.scope.get("extensions") or {}):
            # Protocol-level pings come to us, to be counted against ws.control.
            accept[DEFER_PINGS_KEY] = True
        await self.base_send(accept)
        await self.write(
            p.Welcome(
                session_id=session.session_id,
                player_id=session.player_id,
                node=settings.GAME_NODE_ID,
                heartbeat_s=settings.GAME_HEARTBEAT_S,
                resumed=resumed,
                last_seq=session.outbox.last_seq,
                restored=session.restored,
            )
        )
        await hub.bind(
            session, self, actor, resumed=resumed, after_seq=last_seq if resumed and last_seq else 0
        )
        hub.connections.add(self)
        hub.heartbeat.add(self)
        self.connected_at = time.time()
        return None

    # -- frames ----------------------------------------------------------------------------

    async def _receive(self, text: str | None, data: bytes | None) -> None:
        session = self.session
        if session is None:
            return
        self.hb_alive = True  # any frame proves the client alive: no heartbeat ping due
        try:
            msg = p.decode_client(self.codec, text, data, world_size=settings.GAME_WORLD_SIZE)
        except p.ProtocolError as exc:
            _messages_in["bad_message"] += 1
            await self._error(session, exc.to_error())
            return
        kind = type(msg)
        tag = tag_of(kind)
        _messages_in[tag] += 1
        self.n_in += 1
        self._remember("in", tag, len(text) if text is not None else len(data or b""))
        if msg.id is not None and kind not in _CONTROL_TYPES:
            timed = self._timed
            if timed is None:
                timed = self._timed = {}
            elif len(timed) >= MAX_TIMED_REQUESTS:
                timed.clear()
            timed[msg.id] = (time.monotonic(), tag)
        piggyback = msg.ack
        if piggyback is not None and not session.ack(piggyback):
            await self._error(
                session,
                p.Error(code=p.INVALID, message="ack of a seq never sent", field="ack", re=msg.id),
            )
            return
        # A queued admission has waited inside admit: this connection's later frames wait
        # too, so their order is kept.
        decision = await admit(resource_of(kind), player=session.player_id, ip=self._ip)
        if decision.rejected:
            await self._rate_limited(session, msg, decision.retry_after_ms)
            return
        if kind is p.Ack:
            if not session.ack(msg.seq):  # type: ignore[attr-defined]
                await self._error(
                    session,
                    p.Error(
                        code=p.INVALID, message="ack of a seq never sent", field="seq", re=msg.id
                    ),
                )
            elif msg.id is not None:
                await session.emit(p.Ok(seq=0, re=msg.id))
        elif kind is p.Ping:
            await self.write(p.ServerPong(ts=msg.ts, re=msg.id))  # type: ignore[attr-defined]
        elif kind is p.Pong:
            ts = msg.ts  # type: ignore[attr-defined]
            if ts == self.hb_last_ts and self.hb_outstanding:
                self.rtt_ms = max(0, wall_ms() - ts)
            get_runtime().heartbeat.pong(self, ts)
            if msg.id is not None:
                await session.emit(p.Ok(seq=0, re=msg.id))
        else:
            actor = self.actor
            assert actor is not None
            try:
                actor.tell(msg)
            except MailboxFull:
                await session.emit(
                    p.Error(code=p.BUSY, message="the player is busy; retry shortly", re=msg.id)
                )

    async def _protocol_ping(self, payload: bytes) -> None:
        """A WebSocket ping frame: answered like an application ping, within ws.control."""
        session = self.session
        if session is None:
            return
        self.hb_alive = True
        _messages_in["ws_ping_frame"] += 1
        decision = await admit(CONTROL_RESOURCE, player=session.player_id, ip=self._ip)
        if decision.rejected:
            await self._rate_limited(session, None, decision.retry_after_ms)
            return
        try:
            await self.base_send({"type": PONG_EVENT, "bytes": payload})
        except Exception as exc:  # closing under us, as in write()
            logger.debug("pong to a closing connection dropped: %r", exc)

    def _remember(self, direction: str, tag: str, size: int) -> None:
        if tag in _UNREMEMBERED:
            return  # heartbeats and acks: an idle connection never makes its deque
        recent = self.recent
        if recent is None:
            recent = self.recent = deque(maxlen=RECENT_MESSAGES)
        recent.append(RecentMessage(time.time(), direction, tag, size))

    async def _rate_limited(self, session: Session, msg: Any, retry_after_ms: int) -> None:
        self.n_limited += 1
        await session.emit(
            p.Error(
                code=p.RATE_LIMITED,
                message="too many messages; slow down",
                re=None if msg is None else msg.id,
                retry_after_ms=retry_after_ms,
            )
        )
        if self._abuse is None:
            self._abuse = EventWindow(settings.GAME_ABUSE_THRESHOLD, ABUSE_WINDOW_S)
        if self._abuse.hit_is_over_limit():
            await self.close_with(
                p.CloseCode.RATE_LIMITED, f"rate-limit abuse; retry_after_ms={retry_after_ms}"
            )

    async def _error(self, session: Session, error: p.Error) -> None:
        await session.emit(error)
        if error.code not in _BAD_FRAME_CODES:
            return
        if self._bad is None:
            self._bad = EventWindow(BAD_FRAME_LIMIT, BAD_FRAME_WINDOW_S)
        if self._bad.hit_is_over_limit():
            await self.close_with(p.CloseCode.BAD_MESSAGES, "too many bad messages")

    # -- output (used by the session, the hub and the heartbeat) -------------------------

    async def write(self, msg: Any) -> None:
        tag = tag_of(type(msg))
        _messages_out[tag] += 1
        self.n_out += 1
        timed = self._timed
        if timed:
            request = timed.pop(getattr(msg, "re", None), None)
            if request is not None:
                _observe_request(request[1], time.monotonic() - request[0])
        key = "bytes" if self.codec.binary else "text"
        frame = self.codec.encode(msg)
        self._remember("out", tag, len(frame))
        try:
            await self.base_send({"type": "websocket.send", key: frame})
        except Exception as exc:
            # The socket went away under us (its disconnect event is on the way). A write
            # is called from actor handlers: it must never fail them. The message stays in
            # the session's outbox for a resume.
            logger.debug("write to a closing connection dropped: %r", exc)

    async def close_with(self, code: int, reason: str = "") -> None:
        if self._server_close is not None:
            return
        self._server_close = code
        raw = reason.encode()[:MAX_CLOSE_REASON_BYTES]
        reason = raw.decode(errors="ignore")  # never split a character
        await self.base_send({"type": "websocket.close", "code": int(code), "reason": reason})

    async def heartbeat_ping(self, ts: int) -> None:
        await self.write(p.ServerPing(ts=ts))

    async def heartbeat_timeout(self) -> None:
        await self.close_with(p.CloseCode.HEARTBEAT_TIMEOUT, "heartbeat timeout")

    # -- disconnect ------------------------------------------------------------------------

    def _disconnected(self, code: int) -> None:
        session, self.session = self.session, None
        if session is None:
            return
        # Only a client's own 1000 ends the session; our closes (4408, 1001...) and dropped
        # connections leave it resumable for the grace period.
        ends = code == p.CloseCode.NORMAL and self._server_close is None
        get_runtime().hub.detach(self, session, ends_session=ends)

"""The node on uvicorn: websockets' sans-I/O protocol, uvloop and httptools (the default).

Chosen by measurement (docs/BENCHMARKS.md): about twice Daphne's WebSocket messages per
core on the same application. What the node needs beyond stock uvicorn is here, in
subclasses of uvicorn's protocols and server:

- every request head and WebSocket upgrade must complete within
  ``GAME_HANDSHAKE_TIMEOUT_S``, however slowly its bytes arrive (uvicorn bounds only the
  idle time between keep-alive requests), and one client address may hold at most
  ``GAME_MAX_CONNS_PER_IP`` connections (``guard``);
- protocol-level WebSocket pings go to the application (the ``game.ping`` extension, see
  ``gateway/asgi_ext.py``), which counts them against ``ws.control`` like app pings;
- SIGTERM drains the gateway first (1001 to every game socket, every actor's
  ``on_stop``), then uvicorn closes what is left, and the process exits 0;
- tickets never reach a log line (uvicorn logs paths with their query string).

Close codes (1001, 1009, 4xxx with reasons) and the message-size limit need nothing
extra: websockets sends any valid code with its reason and closes with 1009 past
``max_size``.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import os
import socket
from typing import Any

from django.conf import settings
from uvicorn import Config, Server
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.frames import Frame, Opcode
from websockets.server import ServerProtocol

from gamebackend.gateway.asgi_ext import DEFER_PINGS_KEY, PING_EVENT, PING_EXTENSION, PONG_EVENT
from gamebackend.gateway.tickets import redact_ticket
from gamebackend.server.collector import settle_garbage_collector
from gamebackend.server.guard import ConnectionGuard, trusted_networks
from gamebackend.server.lifecycle import SHUTDOWN_SLACK_S, drain_gateway, start_gateway

logger = logging.getLogger("gamebackend.server")

# Listen backlog: connects arrive in bursts (a node restart reconnects every player).
LISTEN_BACKLOG = 4096
# Idle time between keep-alive HTTP requests (uvicorn's own timer).
KEEP_ALIVE_S = 5
# After the gateway drained, how long uvicorn may wait for other connections (HTTP).
UVICORN_SHUTDOWN_S = 1
_UVICORN_LOGGERS = ("uvicorn.access", "uvicorn.error")
# websockets' protocol logs "connection open" / "connection closed" at INFO for every
# socket (uvicorn's access line already says it): its own logger, quiet unless debugging.
_protocol_logger = logging.getLogger("gamebackend.server.websockets")
_protocol_logger.setLevel(logging.WARNING)


class _Handshake:
    """The guard's deadline of one connection: closes its transport when it fires."""

    __slots__ = ("ip", "timer", "transport")

    def __init__(self, transport: asyncio.Transport, ip: str) -> None:
        self.transport = transport
        self.ip = ip
        self.timer: asyncio.TimerHandle | None = None

    def arm(self, loop: asyncio.AbstractEventLoop, timeout: float) -> None:
        if self.timer is None:
            self.timer = loop.call_later(timeout, self._expired, timeout)

    def disarm(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def _expired(self, timeout: float) -> None:
        self.timer = None
        logger.info(
            "closing a connection from %s: no complete request within %gs", self.ip, timeout
        )
        self.transport.abort()


class GameHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with the connection guard."""

    guard: ConnectionGuard  # set by build_server
    _handshake: _Handshake | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        ip = self.client[0] if self.client else ""
        if not self.guard.open(ip):
            transport.write(self.guard.refusal)
            transport.close()
            return
        self._handshake = _Handshake(transport, ip)
        self._handshake.arm(self.loop, self.guard.handshake_timeout_s)

    def connection_lost(self, exc: Exception | None) -> None:
        handshake, self._handshake = self._handshake, None
        if handshake is not None:
            handshake.disarm()
            self.guard.close(handshake.ip)
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        # A keep-alive connection's next request: a fresh deadline from its first byte.
        if self._handshake is not None:
            self._handshake.arm(self.loop, self.guard.handshake_timeout_s)

    def on_headers_complete(self) -> None:
        upgrading = self.parser.should_upgrade() and self._should_upgrade()
        if self._handshake is not None and not upgrading:
            self._handshake.disarm()  # the head is in; the application answers now
        super().on_headers_complete()

    def handle_websocket_upgrade(self) -> None:
        # uvicorn's own upgrade, except that the WebSocket protocol takes over the guard's
        # deadline (it ends at accept) and this connection's count (it ends at close).
        self.connections.discard(self)
        method = self.scope["method"].encode()
        output = [method, b" ", self.url, b" HTTP/1.1\r\n"]
        for name, value in self.scope["headers"]:
            output += [name, b": ", value, b"\r\n"]
        output.append(b"\r\n")
        protocol = GameWebSocketProtocol(
            config=self.config, server_state=self.server_state, app_state=self.app_state
        )
        protocol.handshake, self._handshake = self._handshake, None
        protocol.guard = self.guard
        protocol.connection_made(self.transport)
        self.transport.set_protocol(protocol)
        protocol.data_received(b"".join(output))


class GameServerProtocol(ServerProtocol):
    """websockets' sans-I/O server protocol; with ``defer_pings`` it leaves client pings
    unanswered for the application to answer (or not) through the ``game.ping`` extension."""

    defer_pings = False
    pings: list[bytes] | None = None

    def recv_frame(self, frame: Frame) -> None:
        if frame.opcode is Opcode.PING and self.defer_pings:
            if self.pings is None:
                self.pings = []
            self.pings.append(bytes(frame.data))
            self.events.append(frame)  # as the base class does, minus the automatic pong
            return
        super().recv_frame(frame)


class GameWebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's websockets sans-I/O protocol with the guard and the ``game.ping`` extension."""

    guard: ConnectionGuard
    handshake: _Handshake | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.conn: GameServerProtocol = GameServerProtocol(
            max_size=self.config.ws_max_size, logger=_protocol_logger
        )

    def connection_lost(self, exc: Exception | None) -> None:
        handshake, self.handshake = self.handshake, None
        if handshake is not None:
            handshake.disarm()
            self.guard.close(handshake.ip)
        super().connection_lost(exc)

    def handle_connect(self, event: Any) -> None:
        super().handle_connect(event)
        if self.response.status_code == 101:
            # The application task is created but has not run yet: it sees the extension.
            self.scope["extensions"][PING_EXTENSION] = {}

    def start_keepalive(self) -> None:
        # Called exactly when the upgrade is accepted: the handshake is complete.
        if self.handshake is not None:
            self.handshake.disarm()
        super().start_keepalive()

    def handle_ping(self) -> None:
        pings, self.conn.pings = self.conn.pings, None
        if pings and not self.close_sent:
            for payload in pings:
                self.queue.put_nowait({"type": PING_EVENT, "bytes": payload})  # type: ignore[typeddict-item]
        output = self.conn.data_to_send()
        if output:
            self.transport.write(b"".join(output))

    async def send(self, message: Any) -> None:
        kind = message["type"]
        if kind == PONG_EVENT:
            if not self.close_sent and not self.disconnected:
                self.conn.send_pong(message["bytes"])
                self.transport.write(b"".join(self.conn.data_to_send()))
            return
        if kind == "websocket.accept" and message.get(DEFER_PINGS_KEY):
            self.conn.defer_pings = True
        await super().send(message)


class RedactTickets(logging.Filter):
    """uvicorn logs request paths with their query string: redact every ticket in them."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and any(isinstance(a, str) and "?" in a for a in args):
            record.args = tuple(_redacted(a) if isinstance(a, str) else a for a in args)
        return True


def _redacted(text: str) -> str:
    base, sep, query = text.partition("?")
    return f"{base}?{redact_ticket(query)}" if sep else text


class GameServer(Server):
    """uvicorn's server, draining the gateway before uvicorn's own shutdown."""

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        # A fresh context: the runtime's tasks live as long as the process.
        contextvars.Context().run(start_gateway)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        for server in self.servers:
            server.close()  # no new connections while draining
        await drain_gateway()
        await super().shutdown(sockets)
        # uvicorn re-raises the signal it caught once serving ends, which would make the
        # exit status "killed by SIGTERM"; a drained node exits 0.
        self._captured_signals.clear()


def build_server(application: Any, **overrides: Any) -> GameServer:
    """The node's uvicorn server for ``application`` (options from settings)."""
    guard = ConnectionGuard(
        max_per_ip=settings.GAME_MAX_CONNS_PER_IP,
        handshake_timeout_s=settings.GAME_HANDSHAKE_TIMEOUT_S,
        # GAME_TRUSTED_PROXIES as parsed by the settings, else straight from the environment.
        exempt=trusted_networks(
            getattr(settings, "GAME_TRUSTED_PROXIES", None)
            or os.environ.get("GAME_TRUSTED_PROXIES", "")
        ),
    )
    http_protocol = type("BoundGameHttpProtocol", (GameHttpProtocol,), {"guard": guard})
    for name in _UVICORN_LOGGERS:
        logging.getLogger(name).addFilter(RedactTickets())
    options: dict[str, Any] = {
        "app": application,
        "host": settings.GAME_BIND.host,
        "port": settings.GAME_BIND.port,
        "loop": "uvloop",
        "http": http_protocol,
        "ws": GameWebSocketProtocol,
        "ws_max_size": settings.GAME_MAX_MESSAGE_BYTES,
        # The game has its own heartbeat (docs/PROTOCOL.md); no protocol-level keepalive.
        "ws_ping_interval": None,
        "ws_ping_timeout": None,
        # A small compressed frame could inflate past the size limit: never negotiated.
        "ws_per_message_deflate": False,
        # Channels' router has no lifespan protocol; the runtime starts on first use.
        "lifespan": "off",
        "interface": "asgi3",
        # Django's LOGGING owns the handlers; uvicorn's loggers propagate to it.
        "log_config": None,
        "access_log": settings.GAME_ACCESS_LOG,
        # Client addresses behind proxies are the application's business
        # (GAME_TRUSTED_PROXIES); uvicorn must not rewrite them from headers.
        "proxy_headers": False,
        "server_header": False,
        "backlog": LISTEN_BACKLOG,
        "timeout_keep_alive": KEEP_ALIVE_S,
        "timeout_graceful_shutdown": UVICORN_SHUTDOWN_S,
    }
    options.update(overrides)
    return GameServer(Config(**options))


def reuse_port_socket(host: str, port: int) -> socket.socket:
    """A listening socket that other server processes of this node bind too (SO_REUSEPORT):
    the kernel spreads incoming connections over them."""
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(address)
    sock.listen(LISTEN_BACKLOG)
    sock.setblocking(False)
    return sock


def main() -> None:
    """Serve the node (Django is set up: ``gamebackend.server.main`` did it)."""
    from gamebackend.asgi import application

    logger.info(
        "node %s (%s profile) listening on %s (uvicorn, websockets sans-I/O, uvloop; "
        "drain on SIGTERM within %.0fs)",
        settings.GAME_NODE_ID, settings.GAME_PROFILE, settings.GAME_BIND,
        settings.GAME_SHUTDOWN_TIMEOUT_S + SHUTDOWN_SLACK_S + UVICORN_SHUTDOWN_S,
    )  # fmt: skip
    settle_garbage_collector()
    sockets = None
    if settings.GAME_PROCESSES > 1:
        # One of several processes on one port (runnode --processes).
        sockets = [reuse_port_socket(settings.GAME_BIND.host, settings.GAME_BIND.port)]
    build_server(application).run(sockets=sockets)

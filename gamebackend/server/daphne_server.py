"""The node on Daphne (``GAME_SERVER=daphne``; Channels' ``runserver`` also runs Daphne).

Daphne is driven from here rather than from its CLI so that the node's settings (bind
address, message-size limit, keepalive policy) have one source, and so that shutdown is
graceful: on SIGTERM the gateway drains (``lifecycle.drain_gateway``) before Daphne
cancels what is left.

What holds on Daphne (docs/PROTOCOL.md): close codes with reasons, the 1009 size limit,
the graceful drain and ticket redaction, as on the default server. Not on Daphne: the
JSON body of a refused upgrade (Daphne has no denial-response extension: a bare 403),
the per-address connection cap and the bound on a slowly trickled request head
(``GAME_MAX_CONNS_PER_IP``, ``GAME_HANDSHAKE_TIMEOUT_S`` bounds only the application's
accept), and counting protocol-level pings against ``ws.control`` (autobahn answers them).
"""

from __future__ import annotations

import asyncio
import logging
import sys
from typing import Any, cast
from urllib.parse import unquote

from gamebackend.bodylimit import BodyLimits, configured_limits, too_large_response

logger = logging.getLogger("gamebackend.server")

# Daphne's own keepalive ping is replaced by the game's application-level heartbeat.
DAPHNE_PING_INTERVAL_S = 24 * 3600
DAPHNE_PING_TIMEOUT_S = 24 * 3600
# Grace for application instances to finish after their socket closed.
APPLICATION_CLOSE_TIMEOUT_S = 10
# Players stay connected for as long as they play: no forced reconnect.
WEBSOCKET_NO_TIMEOUT = -1
# A close frame's reason is at most 123 bytes (RFC 6455: 125 minus the code).
MAX_CLOSE_REASON_BYTES = 123
# Daphne sweeps every connection for timeouts every 2 s; with its ping off the sweep only
# enforces HTTP and handshake timeouts, so a slower sweep saves CPU at high counts.
TIMEOUT_SWEEP_S = 10.0


def _install_websocket_protocol() -> None:
    """Make Daphne's WebSocket protocol send every close code the gateway uses.

    Autobahn's ``sendClose`` only lets an application send 1000 or 3000-4999, but the
    gateway must also close with 1001 (going away); and a message over the size limit
    must be answered with a 1009 close frame rather than a dropped TCP connection
    (autobahn's default ``failByDrop``). Daphne also drops the close reason, which the
    rate limiter uses for ``retry_after_ms``.
    """
    from daphne import server as daphne_server
    from daphne import ws_protocol

    class GameWebSocketProtocol(ws_protocol.WebSocketProtocol):
        def handle_reply(self, message: dict[str, Any]) -> None:
            if message.get("type") == "websocket.close" and self.state != self.STATE_CONNECTING:
                code = int(message.get("code") or 1000)
                reason = str(message.get("reason") or "")
                raw = reason.encode()[:MAX_CLOSE_REASON_BYTES]
                if code == 1000 or 3000 <= code <= 4999:
                    self.sendClose(code=code, reason=raw.decode(errors="ignore") or None)
                else:
                    self.sendCloseFrame(code=code, reasonUtf8=raw or None, isReply=False)
                return
            super().handle_reply(message)

    class GameWebSocketFactory(ws_protocol.WebSocketFactory):
        protocol = GameWebSocketProtocol

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.setProtocolOptions(failByDrop=False)

    daphne_server.WebSocketFactory = GameWebSocketFactory


def _install_request_body_limit(limits: BodyLimits) -> None:
    """Refuse an oversized request body inside Daphne, before it is buffered.

    Twisted reads a request's whole body (in memory, or a temporary file past 100 KB)
    before Daphne calls the application, and neither Daphne nor Twisted has a setting to
    bound it: the ASGI guard (``gamebackend.bodylimit``) alone would refuse a 10 GB upload
    only after the node had stored it. So the same per-path limits apply here as the
    request arrives: a ``Content-Length`` over the limit is answered 413 (the guard's
    response) and the connection closed without reading the body; a chunked body is cut
    off the same way once it passes the limit.
    """
    from daphne import http_protocol
    from daphne import server as daphne_server

    class BodyLimitedRequest(http_protocol.WebRequest):
        _body_limit = limits.largest
        _body_path = ""
        _body_received = 0
        _body_refused = False

        def gotLength(self, length: int | None) -> None:
            # The request line is parsed but not handed over yet: Twisted keeps the target
            # on the channel until the body is complete.
            target = getattr(self.channel, "_path", b"") or b""
            try:
                self._body_path = unquote(target.split(b"?", 1)[0].decode("ascii"))
                self._body_limit = limits.limit_for(self._body_path)
            except UnicodeDecodeError:
                pass  # Daphne answers 400 later; meanwhile the largest limit holds
            if length is not None and length > self._body_limit:
                self._refuse_body(length)
                return
            super().gotLength(length)

        def handleContentChunk(self, data: bytes) -> None:
            if self._body_refused:
                return
            self._body_received += len(data)
            if self._body_received > self._body_limit:
                self._refuse_body(self._body_received)
                return
            super().handleContentChunk(data)

        def requestReceived(self, command: bytes, path: bytes, version: bytes) -> None:
            if not self._body_refused:
                super().requestReceived(command, path, version)

        def _refuse_body(self, size: int) -> None:
            self._body_refused = True
            headers, body = too_large_response(self._body_path, self._body_limit)
            lines = [b"HTTP/1.1 413 Payload Too Large"]
            lines += [name + b": " + value for name, value in headers]
            self.channel.transport.write(b"\r\n".join(lines) + b"\r\n\r\n" + body)
            self.channel.loseConnection()
            peer = self.channel.transport.getPeer()
            logger.info(
                "request body to %s from %s refused: %d+ bytes, limit %d",
                self._body_path or "?", getattr(peer, "host", "?"), size, self._body_limit,
            )  # fmt: skip

    class BodyLimitedFactory(http_protocol.HTTPFactory):
        def buildProtocol(self, addr: Any) -> Any:
            protocol = super().buildProtocol(addr)
            protocol.requestFactory = BodyLimitedRequest
            return protocol

    daphne_server.HTTPFactory = BodyLimitedFactory


def build_server(application: Any, **overrides: Any) -> Any:
    from daphne.access import AccessLogGenerator
    from daphne.endpoints import build_endpoint_description_strings
    from daphne.server import Server
    from django.conf import settings
    from twisted.internet import defer, reactor

    from gamebackend.gateway.tickets import redact_ticket
    from gamebackend.server.lifecycle import drain_gateway

    class GameServer(Server):
        def kill_all_applications(self) -> Any:
            # The drain's task is owned by this Deferred (it holds the task and follows it
            # to the end), and Daphne's shutdown waits on the Deferred before stopping.
            done = defer.Deferred.fromFuture(asyncio.ensure_future(drain_gateway()))
            done.addBoth(lambda _: Server.kill_all_applications(self))
            return done

        def timeout_checker(self) -> None:
            for protocol in list(self.connections.keys()):
                protocol.check_timeouts()
            cast(Any, reactor).callLater(TIMEOUT_SWEEP_S, self.timeout_checker)

    action_logger = None
    if settings.GAME_ACCESS_LOG:
        access = AccessLogGenerator(sys.stdout)

        def action_logger(protocol: str, action: str, details: dict[str, Any]) -> None:
            # Tickets travel in the query string: never let one reach a log line.
            path = details.get("path")
            if isinstance(path, str) and "?" in path:
                base, _, query = path.partition("?")
                details = {**details, "path": f"{base}?{redact_ticket(query)}"}
            access(protocol, action, details)

    _install_websocket_protocol()
    _install_request_body_limit(configured_limits())
    options: dict[str, Any] = {
        "application": application,
        "endpoints": build_endpoint_description_strings(
            host=settings.GAME_BIND.host, port=settings.GAME_BIND.port
        ),
        "action_logger": action_logger,
        "websocket_timeout": WEBSOCKET_NO_TIMEOUT,
        # Time the application may take to accept an upgrade before Daphne drops it.
        "websocket_connect_timeout": settings.GAME_HANDSHAKE_TIMEOUT_S,
        "ping_interval": DAPHNE_PING_INTERVAL_S,
        "ping_timeout": DAPHNE_PING_TIMEOUT_S,
        "websocket_max_message_size": settings.GAME_MAX_MESSAGE_BYTES,
        "websocket_max_frame_size": settings.GAME_MAX_MESSAGE_BYTES,
        "application_close_timeout": APPLICATION_CLOSE_TIMEOUT_S,
        "verbosity": 1,
    }
    options.update(overrides)
    return GameServer(**options)


def main() -> None:
    # Daphne runs Twisted on asyncio; the reactor must be installed before Django loads.
    import django
    from daphne.server import Server  # noqa: F401  (installs the asyncio reactor)

    django.setup()
    from django.conf import settings

    from gamebackend.asgi import application
    from gamebackend.server.collector import settle_garbage_collector

    logger.info(
        "node %s (%s profile) listening on %s (daphne)",
        settings.GAME_NODE_ID,
        settings.GAME_PROFILE,
        settings.GAME_BIND,
    )
    settle_garbage_collector()
    build_server(application).run()
    sys.exit(0)

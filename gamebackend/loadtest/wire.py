"""A minimal WebSocket client (RFC 6455) as a bare ``asyncio.Protocol``: no task per socket.

Load bots need tens of thousands of sockets in one process and ~20k frames/s on one
core, so this does only what a bot needs: the HTTP upgrade, unfragmented or fragmented
data frames, ping/pong and the close handshake. No compression, no extensions. Frames go
out masked (as clients must); server frames are parsed straight from the received bytes.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import random
import struct
from typing import Any, Final

try:  # websockets' C helper is ~20x faster than the pure-Python XOR for masking.
    from websockets.speedups import apply_mask
except ImportError:  # pragma: no cover - the wheel ships the extension on our platforms
    from websockets.utils import apply_mask

WS_GUID: Final = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
OP_CONTINUATION: Final = 0x0
OP_TEXT: Final = 0x1
OP_BINARY: Final = 0x2
OP_CLOSE: Final = 0x8
OP_PING: Final = 0x9
OP_PONG: Final = 0xA
FIN: Final = 0x80
MASK_BIT: Final = 0x80
# A server's upgrade response is a few hundred bytes; anything this big is not one.
MAX_HANDSHAKE_BYTES: Final = 16 * 1024
# Bot replies are small; a bound keeps a misbehaving server from growing our buffers.
MAX_MESSAGE_BYTES: Final = 1024 * 1024
# After our close frame (or our answer to the server's), the server should drop TCP;
# if it does not within this, we do.
CLOSE_TIMEOUT_S: Final = 2.0
# Close codes we report when the connection ended without a close frame.
CLOSE_NO_STATUS: Final = 1005
CLOSE_ABNORMAL: Final = 1006
CLOSE_PROTOCOL_ERROR: Final = 1002
KEY_BYTES: Final = 16
MASK_BITS: Final = 32

CONNECTING, OPEN, CLOSING, CLOSED = 0, 1, 2, 3

_pack_short = struct.Struct("!BBH").pack
_pack_long = struct.Struct("!BBQ").pack
_randbits = random.getrandbits


class HandshakeFailed(Exception):
    """The server refused the upgrade (``status`` is the HTTP status, 0 if unparseable;
    ``headers`` are the response's, lower-cased, e.g. ``retry-after`` on a 429; ``body`` what
    of the response's body came with its head, e.g. the node's JSON error)."""

    def __init__(
        self, status: int, reason: str, headers: dict[str, str] | None = None, body: bytes = b""
    ) -> None:
        super().__init__(f"upgrade refused: {status} {reason}")
        self.status = status
        self.headers = headers or {}
        self.body = body


class ClosedBeforeReady(ConnectionError):
    """The upgrade succeeded but the connection closed before it was ready."""


def client_frame(opcode: int, payload: bytes) -> bytes:
    """One final, masked frame (clients must mask: RFC 6455 §5.3)."""
    n = len(payload)
    mask = _randbits(MASK_BITS).to_bytes(4, "big")
    if n < 126:
        header = bytes((FIN | opcode, MASK_BIT | n))
    elif n < 65536:
        header = _pack_short(FIN | opcode, MASK_BIT | 126, n)
    else:
        header = _pack_long(FIN | opcode, MASK_BIT | 127, n)
    return header + mask + apply_mask(payload, mask)


def upgrade_request(
    host: str, port: int, resource: str, key: str, subprotocol: str | None
) -> bytes:
    lines = [
        f"GET {resource} HTTP/1.1",
        f"Host: {host}:{port}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {key}",
        "Sec-WebSocket-Version: 13",
    ]
    if subprotocol:
        lines.append(f"Sec-WebSocket-Protocol: {subprotocol}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def accept_value(key: str) -> str:
    return base64.b64encode(hashlib.sha1(key.encode() + WS_GUID).digest()).decode()


class WsClient(asyncio.Protocol):
    """Base protocol: subclasses implement ``on_open``, ``on_message`` and ``on_closed``.

    ``opened`` resolves when the connection is ready (or fails with the reason), so the
    one coroutine that opened the socket can await it; after that everything is
    callbacks. Ready means upgraded, unless a subclass sets ``ready_on_upgrade = False``
    and calls ``set_ready`` itself (e.g. once an application-level greeting arrived).
    """

    ready_on_upgrade = True

    __slots__ = (
        "_close_timer",
        "_frag",
        "_frag_op",
        "_key",
        "_request",
        "_rest",
        "close_code",
        "close_reason",
        "opened",
        "state",
        "transport",
    )

    def __init__(self, host: str, port: int, resource: str, subprotocol: str | None) -> None:
        self._key = base64.b64encode(os.urandom(KEY_BYTES)).decode()
        self._request = upgrade_request(host, port, resource, self._key, subprotocol)
        self._rest = b""
        self._frag: list[bytes] | None = None
        self._frag_op = 0
        self._close_timer: asyncio.TimerHandle | None = None
        self.transport: asyncio.Transport | None = None
        self.state = CONNECTING
        self.close_code: int | None = None  # from the server's close frame, else 1006
        self.close_reason = ""  # the server's close frame's reason text
        self.opened: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    # --- callbacks for subclasses -------------------------------------------------------

    def on_open(self) -> None:
        """The upgrade succeeded."""

    def on_message(self, opcode: int, payload: bytes) -> None:
        """A complete text (OP_TEXT) or binary (OP_BINARY) message."""

    def on_closed(self, code: int) -> None:
        """The TCP connection is gone; ``code`` is the server's close code or 1006."""

    # --- sending ------------------------------------------------------------------------

    def send(self, opcode: int, payload: bytes) -> None:
        transport = self.transport
        if self.state == OPEN and transport is not None:
            transport.write(client_frame(opcode, payload))

    def close(self, code: int = 1000) -> None:
        """Start the close handshake; the server answers and drops TCP (bounded wait)."""
        transport = self.transport
        if transport is None or self.state >= CLOSING:
            return
        if self.state == CONNECTING:
            transport.abort()
            return
        self.state = CLOSING
        transport.write(client_frame(OP_CLOSE, code.to_bytes(2, "big")))
        self._arm_close_timer()

    def set_ready(self) -> None:
        if not self.opened.done():
            self.opened.set_result(None)

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    def _arm_close_timer(self) -> None:
        if self._close_timer is None:
            loop = asyncio.get_running_loop()
            self._close_timer = loop.call_later(CLOSE_TIMEOUT_S, self.abort)

    # --- asyncio.Protocol ---------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(self._request)

    def connection_lost(self, exc: Exception | None) -> None:
        was = self.state
        self.state = CLOSED
        if self._close_timer is not None:
            self._close_timer.cancel()
            self._close_timer = None
        if not self.opened.done():
            if was == CONNECTING:
                self.opened.set_exception(exc or ConnectionError("closed during the upgrade"))
            else:
                self.opened.set_exception(ClosedBeforeReady(self.close_code or CLOSE_ABNORMAL))
        if self.close_code is None:
            self.close_code = CLOSE_ABNORMAL
        if was != CONNECTING:
            self.on_closed(self.close_code)

    def data_received(self, data: bytes) -> None:
        if self.state == CONNECTING:
            self._handshake(data)
        else:
            self._frames(data)

    # --- parsing ------------------------------------------------------------------------

    def _fail_handshake(self, error: Exception) -> None:
        if not self.opened.done():
            self.opened.set_exception(error)
        self.abort()

    def _handshake(self, data: bytes) -> None:
        buf = self._rest + data
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            if len(buf) > MAX_HANDSHAKE_BYTES:
                self._fail_handshake(HandshakeFailed(0, "oversized response"))
            else:
                self._rest = buf
            return
        self._rest = b""
        head = buf[:end].decode("latin-1").split("\r\n")
        parts = head[0].split(" ", 2)
        try:
            status = int(parts[1])
        except (IndexError, ValueError):
            return self._fail_handshake(HandshakeFailed(0, "bad status line"))
        headers: dict[str, str] = {}
        for line in head[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if status != 101:
            reason = parts[2] if len(parts) > 2 else ""
            body = buf[end + 4 :]
            return self._fail_handshake(HandshakeFailed(status, reason, headers, body))
        if headers.get("sec-websocket-accept") != accept_value(self._key):
            return self._fail_handshake(HandshakeFailed(status, "bad Sec-WebSocket-Accept"))
        self.state = OPEN
        self.on_open()
        if self.ready_on_upgrade:
            self.set_ready()
        rest = buf[end + 4 :]
        if rest:
            self._frames(rest)
        return None

    def _frames(self, data: bytes) -> None:
        if self._rest:
            data = self._rest + data
            self._rest = b""
        pos = 0
        n = len(data)
        while n - pos >= 2:
            b0 = data[pos]
            b1 = data[pos + 1]
            length = b1 & 0x7F
            head = 2
            if length == 126:
                if n - pos < 4:
                    break
                length = int.from_bytes(data[pos + 2 : pos + 4], "big")
                head = 4
            elif length == 127:
                if n - pos < 10:
                    break
                length = int.from_bytes(data[pos + 2 : pos + 10], "big")
                head = 10
            if b1 & MASK_BIT or length > MAX_MESSAGE_BYTES:
                # Servers never mask (RFC 6455 §5.1); either way the stream is unusable.
                self.close_code = CLOSE_PROTOCOL_ERROR
                self.abort()
                return
            end = pos + head + length
            if end > n:
                break
            payload = data[pos + head : end]
            pos = end
            opcode = b0 & 0x0F
            if opcode >= OP_CLOSE:
                self._control(opcode, payload)
            elif opcode == OP_CONTINUATION:
                if self._frag is None:
                    continue  # a continuation with nothing to continue: drop it
                self._frag.append(payload)
                if b0 & FIN:
                    whole = b"".join(self._frag)
                    self._frag = None
                    self.on_message(self._frag_op, whole)
            elif b0 & FIN:
                self.on_message(opcode, payload)
            else:
                self._frag = [payload]
                self._frag_op = opcode
            if self.state == CLOSED:
                return
        if pos < n:
            self._rest = data[pos:]

    def _control(self, opcode: int, payload: bytes) -> None:
        transport = self.transport
        if transport is None:
            return
        if opcode == OP_PING:
            if self.state == OPEN:
                transport.write(client_frame(OP_PONG, payload))
        elif opcode == OP_CLOSE:
            code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else CLOSE_NO_STATUS
            self.close_code = code
            self.close_reason = payload[2:].decode(errors="replace")
            if self.state == OPEN:
                # Echo the code (RFC 6455 §5.5.1); the server then closes TCP.
                self.state = CLOSING
                echoed = b"" if code == CLOSE_NO_STATUS else payload[:2]
                transport.write(client_frame(OP_CLOSE, echoed))
            self._arm_close_timer()


def connection_info(transport: Any) -> tuple[str, int] | None:
    """The socket's local (address, port), if it has one."""
    sockname = transport.get_extra_info("sockname") if transport is not None else None
    if isinstance(sockname, tuple) and len(sockname) >= 2:
        return str(sockname[0]), int(sockname[1])
    return None

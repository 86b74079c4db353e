"""Exceptions the SDK raises to applications."""

from __future__ import annotations


class GameError(Exception):
    """The server answered a request with `error {code, message, ...}`.

    Subclasses cover failures on the client side, so `except GameError` catches every way a
    request can fail except a timeout (which raises TimeoutError).
    """

    def __init__(
        self,
        code: str,
        message: str,
        retry_after_ms: int | None = None,
        field: str | None = None,
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.retry_after_ms = retry_after_ms
        self.field = field


class ClientClosed(GameError):
    """The client is closed (by `close()`, or it stopped reconnecting); `close_code` says why."""

    def __init__(self, message: str, close_code: int | None = None) -> None:
        super().__init__("closed", message)
        self.close_code = close_code


class SessionLost(GameError):
    """A reconnect could not resume the session, so replies to earlier requests are gone."""

    def __init__(self) -> None:
        super().__init__("session_lost", "the session was not resumed; request outcome unknown")


class ConnectRefused(GameError):
    """The server refused the upgrade: `status` is the HTTP status, `code` the reason from
    its JSON body (e.g. `ticket_expired`, `origin_not_allowed`; docs/PROTOCOL.md), or
    `http_<status>` when the server gave none."""

    def __init__(self, status: int, code: str, message: str = "") -> None:
        super().__init__(code, message or f"upgrade refused with HTTP {status}")
        self.status = status


class SequenceGap(Exception):
    """The server skipped a seq; the connection is dropped and resumed from the last one."""


class AuthError(GameError):
    """The node's auth API refused (`POST /api/auth/...`): `status` is the HTTP status.

    `code` is the API's error code (`bad_credentials`, `bad_refresh_token`, `invalid` with
    `field`, `username_taken`, `rate_limited` or `locked_out` with `retry_after_ms`...).
    """

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        retry_after_ms: int | None = None,
        field: str | None = None,
    ) -> None:
        super().__init__(code, message, retry_after_ms=retry_after_ms, field=field)
        self.status = status

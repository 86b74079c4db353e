"""`TicketSource`: connect tickets from a node's auth API, kept coming with a refresh token.

The first ticket comes from a login (device id, username and password, or guest); the
answer carries a refresh token, and every later ticket (each reconnect) comes from
`POST /api/auth/refresh`, which also hands out the next refresh token (the old one is spent).
If the session is gone (revoked, expired, or refused), the source logs in again with its
credentials; a guest has none, so its `AuthError` reaches the application.

Standard library only (urllib in a worker thread): the SDK needs no HTTP client package.
Tokens are credentials: this module never logs them.
"""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlsplit

from ._errors import AuthError

__all__ = ["Login", "TicketSource"]

DEFAULT_HTTP_TIMEOUT_S: Final = 10.0
# An error body is small JSON; read no more than this from a misbehaving proxy.
MAX_ERROR_BODY: Final = 64 * 1024
HTTP_UNAUTHORIZED: Final = 401


@dataclass(frozen=True)
class Login:
    """One answer of the auth API: a ticket and the session's next refresh token."""

    player_id: str
    ticket: str
    expires_in: int
    refresh_token: str
    refresh_expires_in: int

    @classmethod
    def from_json(cls, body: Any) -> Login:
        try:
            return cls(
                player_id=str(body["player_id"]),
                ticket=str(body["ticket"]),
                expires_in=int(body["expires_in"]),
                refresh_token=str(body["refresh_token"]),
                refresh_expires_in=int(body["refresh_expires_in"]),
            )
        except (KeyError, TypeError, ValueError):
            raise AuthError(0, "bad_answer", "the auth API answered without a login") from None


class TicketSource:
    """An async callable returning a fresh ticket: pass it to `GameClient` as its provider.

        tickets = TicketSource.device("http://127.0.0.1:8000", device_id=my_device_id)
        async with GameClient("ws://127.0.0.1:8000/ws/game/", tickets) as client:
            ...

    `refresh_token` starts from a saved session (`TicketSource.resume`); `on_refresh_token`
    is called with every new refresh token, so the application can save it (it is spent at
    the next refresh). Calls are serialised: two reconnects never spend one token twice.
    """

    def __init__(
        self,
        base_url: str,
        *,
        device_id: str | None = None,
        username: str | None = None,
        password: str | None = None,
        register: bool = False,
        guest: bool = False,
        guest_name: str | None = None,
        refresh_token: str | None = None,
        on_refresh_token: Callable[[str], None] | None = None,
        timeout: float = DEFAULT_HTTP_TIMEOUT_S,
    ) -> None:
        scheme = urlsplit(base_url).scheme
        if scheme not in ("http", "https"):
            raise ValueError(f"base_url must be http(s)://HOST[:PORT], got {base_url!r}")
        if (username is None) != (password is None):
            raise ValueError("username and password go together")
        self._base = base_url.rstrip("/")
        self._device_id = device_id
        self._username = username
        self._password = password
        self._register = register
        self._guest = guest
        self._guest_name = guest_name
        self._refresh_token = refresh_token
        self._on_refresh_token = on_refresh_token
        self._timeout = timeout
        self._lock = asyncio.Lock()
        self.player_id: str | None = None
        self.last: Login | None = None

    # --- constructors -------------------------------------------------------------------

    @classmethod
    def device(cls, base_url: str, device_id: str, **kwargs: Any) -> TicketSource:
        """The player of this device id (`POST /api/auth/device`; 10-128 characters)."""
        return cls(base_url, device_id=device_id, **kwargs)

    @classmethod
    def login(cls, base_url: str, username: str, password: str, **kwargs: Any) -> TicketSource:
        """An existing account (`POST /api/auth/login`)."""
        return cls(base_url, username=username, password=password, **kwargs)

    @classmethod
    def register(cls, base_url: str, username: str, password: str, **kwargs: Any) -> TicketSource:
        """A new account, registered on the first call, logged into afterwards."""
        return cls(base_url, username=username, password=password, register=True, **kwargs)

    @classmethod
    def guest(cls, base_url: str, name: str | None = None, **kwargs: Any) -> TicketSource:
        """A new guest player; only its refresh token brings it back (save it)."""
        return cls(base_url, guest=True, guest_name=name, **kwargs)

    @classmethod
    def resume(cls, base_url: str, refresh_token: str, **kwargs: Any) -> TicketSource:
        """The player of a saved refresh token (no credentials to fall back on)."""
        return cls(base_url, refresh_token=refresh_token, **kwargs)

    # --- use ----------------------------------------------------------------------------

    @property
    def refresh_token(self) -> str | None:
        """The current refresh token (changes with every ticket)."""
        return self._refresh_token

    async def __call__(self) -> str:
        """A fresh, single-use connect ticket."""
        async with self._lock:
            login: Login | None = None
            if self._refresh_token is not None:
                try:
                    login = await self._post("refresh", {"refresh_token": self._refresh_token})
                except AuthError as exc:
                    if exc.status != HTTP_UNAUTHORIZED or not self._can_log_in():
                        raise
                    self._set_refresh_token(None)  # the session is over: log in again
            if login is None:
                login = await self._log_in()
            self.player_id = login.player_id
            self.last = login
            self._set_refresh_token(login.refresh_token)
            return login.ticket

    async def logout(self) -> None:
        """End the session on the node (`POST /api/auth/logout`); forget the token."""
        async with self._lock:
            token = self._refresh_token
            if token is not None:
                await self._request("logout", {"refresh_token": token})
                self._refresh_token = None

    # --- internals ----------------------------------------------------------------------

    def _can_log_in(self) -> bool:
        # A guest cannot log in again as itself: a new guest would be a stranger.
        return (
            self._device_id is not None
            or self._username is not None
            or (self._guest and self.player_id is None)
        )

    async def _log_in(self) -> Login:
        if self._device_id is not None:
            return await self._post("device", {"device_id": self._device_id})
        if self._username is not None:
            creds = {"username": self._username, "password": self._password}
            if self._register:
                login = await self._post("register", creds)
                self._register = False  # from now on the account exists
                return login
            return await self._post("login", creds)
        if self._guest and self.player_id is None:
            body = {} if self._guest_name is None else {"name": self._guest_name}
            return await self._post("guest", body)
        raise AuthError(HTTP_UNAUTHORIZED, "bad_refresh_token", "no session and no credentials")

    def _set_refresh_token(self, token: str | None) -> None:
        changed = token != self._refresh_token
        self._refresh_token = token
        if changed and token is not None and self._on_refresh_token is not None:
            self._on_refresh_token(token)

    async def _post(self, endpoint: str, body: dict[str, Any]) -> Login:
        return Login.from_json(await self._request(endpoint, body))

    async def _request(self, endpoint: str, body: dict[str, Any]) -> Any:
        url = f"{self._base}/api/auth/{endpoint}"
        return await asyncio.to_thread(_post_json, url, body, self._timeout)


def _post_json(url: str, body: dict[str, Any], timeout: float) -> Any:
    """POST ``body`` as JSON (blocking: runs in a worker thread); the JSON answer or None."""
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "application/json", "Accept": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            raw = resp.read()
    except urllib.error.HTTPError as exc:
        raise _auth_error(exc) from None
    return json.loads(raw) if raw else None


def _auth_error(exc: urllib.error.HTTPError) -> AuthError:
    raw = exc.read(MAX_ERROR_BODY)
    try:
        error = json.loads(raw)["error"]
        return AuthError(
            exc.code,
            str(error["code"]),
            str(error.get("message", "")),
            retry_after_ms=error.get("retry_after_ms"),
            field=error.get("field"),
        )
    except (ValueError, KeyError, TypeError):
        return AuthError(exc.code, "http_error", f"HTTP {exc.code} {exc.reason}")

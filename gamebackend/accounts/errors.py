"""What can go wrong when a player asks for a ticket; each error knows its HTTP answer.

The views render them as ``{"error": {"code", "message", "field"?, "retry_after_ms"?}}``
(docs/PROTOCOL.md, "Getting a ticket").
"""

from __future__ import annotations


class AuthError(Exception):
    status = 400
    code = "invalid"

    def __init__(
        self, message: str, *, field: str | None = None, retry_after_ms: int | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.retry_after_ms = retry_after_ms


class Invalid(AuthError):
    """A field of the request is missing or malformed (`field` names it)."""


class Unauthenticated(AuthError):
    status = 401
    code = "unauthenticated"


class BadCredentials(AuthError):
    status = 401
    code = "bad_credentials"

    def __init__(self) -> None:
        super().__init__("wrong username or password")


class BadRefreshToken(AuthError):
    status = 401
    code = "bad_refresh_token"

    def __init__(self) -> None:
        super().__init__("the refresh token is unknown, used, expired or revoked; log in again")


class NotFound(AuthError):
    status = 404
    code = "not_found"


class MethodNotAllowed(AuthError):
    status = 405
    code = "method_not_allowed"


class UsernameTaken(AuthError):
    status = 409
    code = "username_taken"

    def __init__(self) -> None:
        super().__init__("this username is taken", field="username")


class TooLarge(AuthError):
    status = 413
    code = "too_large"


class LockedOut(AuthError):
    status = 429
    code = "locked_out"


class RateLimited(AuthError):
    status = 429
    code = "rate_limited"


class ServerError(AuthError):
    status = 500
    code = "internal"

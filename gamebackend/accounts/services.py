"""How players get tickets: guests, device ids, usernames and passwords, refresh sessions.

Every login answers a `Login`: a connect ticket (single use, `GAME_TICKET_TTL_S`) and a
refresh token (`GAME_REFRESH_TOKEN_TTL_S`, rotating) that gets the next ticket without the
credentials. Writes that must be atomic run in one transaction in the ORM's thread; password
hashing runs in its own threads (`accounts/passwords.py`); the event loop only waits.
"""

from __future__ import annotations

import logging
import math
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from gamebackend.accounts.credentials import (
    device_id_check,
    digest,
    password_shape,
    refresh_secret_new,
    refresh_token_join,
    refresh_token_new,
    refresh_token_split,
    username_normalize,
)
from gamebackend.accounts.errors import BadCredentials, BadRefreshToken, LockedOut, UsernameTaken
from gamebackend.accounts.models import Account, Device, LoginLockout, RefreshSession
from gamebackend.accounts.passwords import password_hash_new, password_verify
from gamebackend.accounts.selectors import account_by_username, lockout_until, session_player_id
from gamebackend.players.services import player_get_or_provision
from gameproto.tickets import mint_ticket

logger = logging.getLogger(__name__)

PLAYER_ID_BYTES: Final = 12
GUEST_ID_BYTES: Final = 9
GUEST_NAME_MAX: Final = 32
# Live refresh sessions kept per account (devices and logins); older ones are revoked.
MAX_SESSIONS_PER_ACCOUNT: Final = 10
MS_PER_S: Final = 1000
# Expired rows (sessions, lockout counts) deleted per login, so cleanup needs no scheduler
# and never makes one login slow.
PRUNE_BATCH: Final = 100


@dataclass(frozen=True)
class IssuedTicket:
    player_id: str
    ticket: str
    expires_in: int

    def as_json(self) -> dict[str, Any]:
        return {"player_id": self.player_id, "ticket": self.ticket, "expires_in": self.expires_in}


@dataclass(frozen=True)
class Login:
    """A ticket and the refresh token of the login's session."""

    issued: IssuedTicket
    refresh_token: str
    refresh_expires_in: int

    @property
    def player_id(self) -> str:
        return self.issued.player_id

    def as_json(self) -> dict[str, Any]:
        return {
            **self.issued.as_json(),
            "refresh_token": self.refresh_token,
            "refresh_expires_in": self.refresh_expires_in,
        }


def ticket_issue(*, player_id: str) -> IssuedTicket:
    """A single-use connect ticket for ``player_id``, good for ``expires_in`` seconds.

    ``iat`` is the next whole second, so the ticket lives at least ``GAME_TICKET_TTL_S``
    from now (and less than one second more): ``expires_in`` is never an overstatement.
    """
    ttl = settings.GAME_TICKET_TTL_S
    issued = math.ceil(time.time())
    token = mint_ticket(secret=settings.GAME_JWT_SECRET, sub=player_id, ttl_s=ttl, now=issued)
    return IssuedTicket(player_id=player_id, ticket=token, expires_in=ttl)


def player_id_for_user(user_pk: int) -> str:
    """The player id of a Django (console) user asking for a ticket."""
    return f"user.{user_pk}"


def _new_player_id() -> str:
    return f"p-{secrets.token_urlsafe(PLAYER_ID_BYTES)}"


def _refresh_ttl() -> timedelta:
    return timedelta(seconds=settings.GAME_REFRESH_TOKEN_TTL_S)


def _login(player_id: str, refresh_token: str) -> Login:
    return Login(
        issued=ticket_issue(player_id=player_id),
        refresh_token=refresh_token,
        refresh_expires_in=settings.GAME_REFRESH_TOKEN_TTL_S,
    )


def _session_open(account: Account, now: datetime) -> str:
    """A new refresh session of ``account`` (inside the caller's transaction)."""
    public_id, secret = refresh_token_new()
    RefreshSession.objects.create(
        public_id=public_id,
        account=account,
        token_hash=digest(secret),
        expires_at=now + _refresh_ttl(),
    )
    expired = RefreshSession.objects.filter(expires_at__lte=now)
    stale = list(expired.values_list("pk", flat=True)[:PRUNE_BATCH])
    if stale:
        RefreshSession.objects.filter(pk__in=stale).delete()
    live = RefreshSession.objects.filter(account=account, revoked_at__isnull=True).order_by(
        "-created_at"
    )
    superseded = list(live.values_list("pk", flat=True)[MAX_SESSIONS_PER_ACCOUNT:])
    if superseded:
        RefreshSession.objects.filter(pk__in=superseded).update(
            revoked_at=now, revoked_reason="superseded"
        )
    return refresh_token_join(public_id, secret)


# --- guests ---------------------------------------------------------------------------------


def _guest_open(player_id: str) -> str:
    now = timezone.now()
    with transaction.atomic():
        account = Account.objects.create(
            player_id=player_id, kind=Account.Kind.GUEST, last_login_at=now
        )
        return _session_open(account, now)


async def guest_create(*, name: str = "") -> Login:
    """A new guest player (stored now, so the chosen name sticks) and its first login.

    The refresh token is the guest's only way back to this player.
    """
    player_id = f"guest-{secrets.token_urlsafe(GUEST_ID_BYTES)}"
    await player_get_or_provision(player_id=player_id, name=name)
    return _login(player_id, await sync_to_async(_guest_open)(player_id))


# --- device ids -----------------------------------------------------------------------------


def _device_open(device_hash: str) -> tuple[str, str]:
    now = timezone.now()
    with transaction.atomic():
        device = Device.objects.select_related("account").filter(device_hash=device_hash).first()
        if device is not None:
            account = device.account
        else:
            try:
                with transaction.atomic():
                    account = Account.objects.create(
                        player_id=_new_player_id(), kind=Account.Kind.DEVICE
                    )
                    Device.objects.create(device_hash=device_hash, account=account)
            except IntegrityError:
                # The same device's first login raced us (another request, another node).
                account = (
                    Device.objects.select_related("account").get(device_hash=device_hash).account
                )
        Account.objects.filter(pk=account.pk).update(last_login_at=now)
        return account.player_id, _session_open(account, now)


async def device_authenticate(*, device_id: object) -> Login:
    """The player of this device id (created on its first login) and a new session."""
    device_hash = digest(device_id_check(device_id))
    player_id, refresh_token = await sync_to_async(_device_open)(device_hash)
    return _login(player_id, refresh_token)


# --- usernames and passwords ----------------------------------------------------------------


def _register(username: str, encoded: str) -> tuple[str, str]:
    now = timezone.now()
    try:
        with transaction.atomic():
            account = Account.objects.create(
                player_id=_new_player_id(),
                kind=Account.Kind.PASSWORD,
                username=username,
                password=encoded,
                last_login_at=now,
            )
            return account.player_id, _session_open(account, now)
    except IntegrityError:
        raise UsernameTaken() from None


async def account_register(*, username: object, password: object) -> Login:
    """A new account with a username (case-insensitive) and a password that passes
    Django's validators (``AUTH_PASSWORD_VALIDATORS``), logged in."""
    name = username_normalize(username)
    secret = password_shape(password)
    if await Account.objects.filter(username=name).aexists():
        raise UsernameTaken()  # before spending a hash on it
    encoded = await password_hash_new(secret, username=name)
    player_id, refresh_token = await sync_to_async(_register)(name, encoded)
    await player_get_or_provision(player_id=player_id, name=name)
    return _login(player_id, refresh_token)


def _retry_after_ms(until: datetime, now: datetime) -> int:
    return max(1, math.ceil((until - now).total_seconds() * MS_PER_S))


def _locked_out(until: datetime, now: datetime) -> LockedOut:
    retry_after_ms = _retry_after_ms(until, now)
    return LockedOut(
        f"too many failed logins for this username from your address; locked until "
        f"{until.isoformat(timespec='seconds')} (in {math.ceil(retry_after_ms / MS_PER_S)} s)",
        retry_after_ms=retry_after_ms,
    )


def _login_failed(username: str, ip_address: str) -> datetime | None:
    """Count a failure; when it reaches the limit, lock and return until when."""
    now = timezone.now()
    lockout = timedelta(seconds=settings.GAME_PLAYER_LOCKOUT_S)
    with transaction.atomic():
        # Counts that cooled off are forgotten (a lock ends within the same period).
        old = LoginLockout.objects.filter(last_failure_at__lt=now - lockout)
        forgotten = list(old.values_list("pk", flat=True)[:PRUNE_BATCH])
        if forgotten:
            LoginLockout.objects.filter(pk__in=forgotten).delete()
        row, created = LoginLockout.objects.select_for_update().get_or_create(
            username=username, ip_address=ip_address, defaults={"last_failure_at": now}
        )
        expired_lock = row.locked_until is not None and row.locked_until <= now
        if expired_lock or (not created and now - row.last_failure_at >= lockout):
            # Cooled off (like django-axes' AXES_COOLOFF_TIME): count from zero again.
            row.failures, row.locked_until = 0, None
        row.failures += 1
        row.last_failure_at = now
        if row.failures >= settings.GAME_PLAYER_LOGIN_FAILURE_LIMIT:
            row.locked_until = now + lockout
        row.save()
        return row.locked_until


def _login_succeeded(account_pk: int, username: str, ip_address: str, rehash: str | None) -> str:
    now = timezone.now()
    with transaction.atomic():
        LoginLockout.objects.filter(username=username, ip_address=ip_address).delete()
        account = Account.objects.select_for_update().get(pk=account_pk)
        account.last_login_at = now
        fields = ["last_login_at"]
        if rehash is not None:
            account.password = rehash
            fields.append("password")
        account.save(update_fields=fields)
        return _session_open(account, now)


async def account_login(*, username: object, password: object, ip_address: str) -> Login:
    """Log in with username and password; locked out after repeated failures.

    ``GAME_PLAYER_LOGIN_FAILURE_LIMIT`` failures of one username from one client address
    lock that pair for ``GAME_PLAYER_LOCKOUT_S`` (LockedOut says until when); a success
    clears the count. A locked pair is refused before the password is checked.
    """
    name = username_normalize(username)
    secret = password_shape(password)
    now = timezone.now()
    until = await lockout_until(username=name, ip_address=ip_address, now=now)
    if until is not None:
        raise _locked_out(until, now)
    account = await account_by_username(username=name)
    ok, rehash = await password_verify(secret, account.password if account else "")
    if not ok or account is None:
        until = await sync_to_async(_login_failed)(name, ip_address)
        if until is not None:
            logger.warning("player login %r from %s locked out until %s", name, ip_address, until)
            raise _locked_out(until, timezone.now())
        raise BadCredentials()
    refresh_token = await sync_to_async(_login_succeeded)(account.pk, name, ip_address, rehash)
    return _login(account.player_id, refresh_token)


# --- refresh sessions -----------------------------------------------------------------------


async def session_refresh(*, refresh_token: object) -> Login:
    """A fresh ticket and the session's next refresh token; the presented one is spent.

    Presenting a spent token of a live session revokes the session (the token was copied:
    whoever holds the newer one must log in again too).
    """
    public_id, secret = refresh_token_split(refresh_token)
    new_secret = refresh_secret_new()
    now = timezone.now()
    live = RefreshSession.objects.filter(
        public_id=public_id, revoked_at__isnull=True, expires_at__gt=now
    )
    rotated = await live.filter(token_hash=digest(secret)).aupdate(
        token_hash=digest(new_secret),
        refreshed_at=now,
        expires_at=now + _refresh_ttl(),
        rotations=F("rotations") + 1,
    )
    if rotated != 1:
        if await live.aupdate(revoked_at=now, revoked_reason="reused"):
            logger.warning("refresh session %s: a spent token was presented; revoked", public_id)
        raise BadRefreshToken()
    player_id = await session_player_id(public_id=public_id)
    return _login(player_id, refresh_token_join(public_id, new_secret))


async def session_revoke(*, refresh_token: object) -> None:
    """Log out: the session of this refresh token (any of its tokens) ends."""
    public_id, _secret = refresh_token_split(refresh_token)
    await RefreshSession.objects.filter(public_id=public_id, revoked_at__isnull=True).aupdate(
        revoked_at=timezone.now(), revoked_reason="logout"
    )


def account_sessions_revoke(*, account_ids: list[int], reason: str = "revoked") -> int:
    """End every live refresh session of these accounts (console action); returns how many."""
    return RefreshSession.objects.filter(
        account_id__in=account_ids, revoked_at__isnull=True
    ).update(revoked_at=timezone.now(), revoked_reason=reason)


def lockouts_clear(*, lockout_ids: list[int]) -> int:
    """Unlock username+address pairs now (console action); returns how many."""
    deleted, _ = LoginLockout.objects.filter(pk__in=lockout_ids).delete()
    return deleted

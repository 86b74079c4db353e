"""Player accounts in process: the services against the real (SQLite) database."""

from __future__ import annotations

import time
import uuid
from datetime import timedelta
from typing import Any

import jwt
import pytest
from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.auth.hashers import PBKDF2PasswordHasher, identify_hasher
from django.utils import timezone

from gamebackend.accounts.errors import (
    BadCredentials,
    BadRefreshToken,
    Invalid,
    LockedOut,
    UsernameTaken,
)
from gamebackend.accounts.models import Account, LoginLockout, RefreshSession
from gamebackend.accounts.services import (
    MAX_SESSIONS_PER_ACCOUNT,
    account_login,
    account_register,
    account_sessions_revoke,
    device_authenticate,
    guest_create,
    session_refresh,
    session_revoke,
    ticket_issue,
)
from gamebackend.gateway.tickets import TicketRejected, verify_ticket
from gamebackend.players.models import Player

pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = "tall-Lantern-river-42"
IP = "203.0.113.7"


def device_id() -> str:
    return f"device-{uuid.uuid4().hex}"


def username() -> str:
    return f"u{uuid.uuid4().hex[:12]}"


# --- tickets --------------------------------------------------------------------------------


def test_a_ticket_is_good_for_all_of_expires_in() -> None:
    # Issue 12 item 3: a ticket announced as good for 60 s was refused after 30 s.
    issued = ticket_issue(player_id="p-1")
    assert issued.expires_in == settings.GAME_TICKET_TTL_S
    claims = jwt.decode(issued.ticket, options={"verify_signature": False})
    issued_at = time.time()  # no later than the moment the ticket was handed out
    assert claims["exp"] - issued_at >= issued.expires_in
    for now in (issued_at, issued_at + issued.expires_in - 0.01):
        verify_ticket(
            issued.ticket,
            secret=settings.GAME_JWT_SECRET,
            max_age_s=settings.GAME_TICKET_MAX_AGE_S,
            max_lifetime_s=settings.GAME_TICKET_TTL_S,
            now=now,
        )
    with pytest.raises(TicketRejected, match="expired"):
        verify_ticket(
            issued.ticket,
            secret=settings.GAME_JWT_SECRET,
            max_age_s=settings.GAME_TICKET_MAX_AGE_S,
            max_lifetime_s=settings.GAME_TICKET_TTL_S,
            now=claims["exp"],
        )


# --- devices and guests ---------------------------------------------------------------------


async def test_the_same_device_is_the_same_player() -> None:
    device = device_id()
    first = await device_authenticate(device_id=device)
    again = await device_authenticate(device_id=device)
    other = await device_authenticate(device_id=device_id())
    assert first.player_id == again.player_id != other.player_id
    assert first.refresh_token != again.refresh_token  # one session per login
    account = await Account.objects.aget(player_id=first.player_id)
    assert account.kind == Account.Kind.DEVICE
    # Only a digest of the device id is stored.
    assert not await Account.objects.filter(devices__device_hash=device).aexists()


async def test_a_guest_gets_a_refresh_token_that_brings_it_back() -> None:
    login = await guest_create(name="Ann")
    assert login.player_id.startswith("guest-")
    assert (await Player.objects.aget(player_id=login.player_id)).name == "Ann"
    back = await session_refresh(refresh_token=login.refresh_token)
    assert back.player_id == login.player_id


# --- usernames and passwords ----------------------------------------------------------------


async def test_register_then_log_in_case_insensitively() -> None:
    name = username()
    registered = await account_register(username=name.upper(), password=PASSWORD)
    account = await Account.objects.aget(player_id=registered.player_id)
    assert account.username == name
    assert account.password.startswith("pbkdf2_sha256$")  # Django's hasher, not the password
    logged_in = await account_login(username=name, password=PASSWORD, ip_address=IP)
    assert logged_in.player_id == registered.player_id
    with pytest.raises(UsernameTaken):
        await account_register(username=name, password=PASSWORD)


async def test_django_password_validators_apply() -> None:
    name = username()
    for weak in ("password", "12345678901", "short1", name + "1"):
        with pytest.raises(Invalid) as info:
            await account_register(username=name, password=weak)
        assert info.value.field == "password"


async def test_an_old_hash_is_upgraded_on_login() -> None:
    name = username()
    old = PBKDF2PasswordHasher().encode(PASSWORD, "somesalt", iterations=1000)
    await Account.objects.acreate(
        player_id=f"p-{name}", username=name, password=old, kind=Account.Kind.PASSWORD
    )
    await account_login(username=name, password=PASSWORD, ip_address=IP)
    stored = (await Account.objects.aget(username=name)).password
    assert stored != old
    assert not identify_hasher(stored).must_update(stored)


async def test_wrong_password_and_unknown_user_are_the_same_error() -> None:
    name = username()
    await account_register(username=name, password=PASSWORD)
    with pytest.raises(BadCredentials):
        await account_login(username=name, password="not-" + PASSWORD, ip_address=IP)
    with pytest.raises(BadCredentials):
        await account_login(username=username(), password=PASSWORD, ip_address=IP)


async def test_lockout_per_username_and_address(settings: Any) -> None:
    settings.GAME_PLAYER_LOGIN_FAILURE_LIMIT = 3
    name = username()
    await account_register(username=name, password=PASSWORD)
    for _ in range(2):
        with pytest.raises(BadCredentials):
            await account_login(username=name, password="wrong-one-1", ip_address=IP)
    with pytest.raises(LockedOut) as info:  # the failure that reaches the limit says so
        await account_login(username=name, password="wrong-one-1", ip_address=IP)
    lockout_ms = settings.GAME_PLAYER_LOCKOUT_S * 1000
    assert lockout_ms - 5000 < (info.value.retry_after_ms or 0) <= lockout_ms
    assert "locked until" in info.value.message
    with pytest.raises(LockedOut):  # even the right password, while locked
        await account_login(username=name, password=PASSWORD, ip_address=IP)
    # Another address is not locked out (no denial of service on a username).
    await account_login(username=name, password=PASSWORD, ip_address="198.51.100.9")

    # When the lock has run out, the right password works and clears the count.
    await LoginLockout.objects.filter(username=name).aupdate(
        locked_until=timezone.now() - timedelta(seconds=1)
    )
    await account_login(username=name, password=PASSWORD, ip_address=IP)
    assert not await LoginLockout.objects.filter(username=name).aexists()


async def test_failures_cool_off(settings: Any) -> None:
    settings.GAME_PLAYER_LOGIN_FAILURE_LIMIT = 2
    name = username()
    with pytest.raises(BadCredentials):
        await account_login(username=name, password="wrong-one-1", ip_address=IP)
    # The last failure was longer ago than the lockout period: count from zero.
    await LoginLockout.objects.filter(username=name).aupdate(
        last_failure_at=timezone.now() - timedelta(seconds=settings.GAME_PLAYER_LOCKOUT_S + 1)
    )
    with pytest.raises(BadCredentials):
        await account_login(username=name, password="wrong-one-1", ip_address=IP)


# --- refresh sessions -----------------------------------------------------------------------


async def test_refresh_rotates_and_a_spent_token_is_refused() -> None:
    login = await device_authenticate(device_id=device_id())
    second = await session_refresh(refresh_token=login.refresh_token)
    assert second.player_id == login.player_id
    assert second.refresh_token != login.refresh_token
    assert second.issued.ticket != login.issued.ticket
    third = await session_refresh(refresh_token=second.refresh_token)
    with pytest.raises(BadRefreshToken):
        await session_refresh(refresh_token=second.refresh_token)
    # The spent token was presented again: copied, so the whole session ends.
    with pytest.raises(BadRefreshToken):
        await session_refresh(refresh_token=third.refresh_token)
    session = await RefreshSession.objects.aget(public_id=login.refresh_token.split(".")[0])
    assert session.revoked_reason == "reused"
    assert session.rotations == 2


async def test_only_hashes_of_refresh_tokens_are_stored() -> None:
    login = await device_authenticate(device_id=device_id())
    _public_id, secret = login.refresh_token.split(".")
    assert not await RefreshSession.objects.filter(token_hash__contains=secret).aexists()


async def test_an_expired_refresh_token_is_refused() -> None:
    login = await device_authenticate(device_id=device_id())
    await RefreshSession.objects.filter(public_id=login.refresh_token.split(".")[0]).aupdate(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    with pytest.raises(BadRefreshToken):
        await session_refresh(refresh_token=login.refresh_token)


async def test_refresh_extends_the_session(settings: Any) -> None:
    login = await device_authenticate(device_id=device_id())
    assert login.refresh_expires_in == settings.GAME_REFRESH_TOKEN_TTL_S == 30 * 86400
    public_id = login.refresh_token.split(".")[0]
    await RefreshSession.objects.filter(public_id=public_id).aupdate(
        expires_at=timezone.now() + timedelta(seconds=5)
    )
    await session_refresh(refresh_token=login.refresh_token)
    session = await RefreshSession.objects.aget(public_id=public_id)
    assert session.expires_at > timezone.now() + timedelta(days=29)


async def test_logout_and_revoke_end_sessions() -> None:
    login = await device_authenticate(device_id=device_id())
    await session_revoke(refresh_token=login.refresh_token)
    with pytest.raises(BadRefreshToken):
        await session_refresh(refresh_token=login.refresh_token)

    device = device_id()
    a = await device_authenticate(device_id=device)
    b = await device_authenticate(device_id=device)
    account = await Account.objects.aget(player_id=a.player_id)
    ended = await sync_to_async(account_sessions_revoke)(account_ids=[account.pk])
    assert ended == 2
    for token in (a.refresh_token, b.refresh_token):
        with pytest.raises(BadRefreshToken):
            await session_refresh(refresh_token=token)


async def test_sessions_per_account_are_capped() -> None:
    device = device_id()
    logins = [
        await device_authenticate(device_id=device) for _ in range(MAX_SESSIONS_PER_ACCOUNT + 2)
    ]
    with pytest.raises(BadRefreshToken):  # the oldest were superseded
        await session_refresh(refresh_token=logins[0].refresh_token)
    await session_refresh(refresh_token=logins[-1].refresh_token)
    live = RefreshSession.objects.filter(
        account__player_id=logins[0].player_id, revoked_at__isnull=True
    )
    assert await live.acount() == MAX_SESSIONS_PER_ACCOUNT


async def test_logins_clean_up_expired_sessions_and_cooled_off_counts(settings: Any) -> None:
    old = await device_authenticate(device_id=device_id())
    await RefreshSession.objects.filter(account__player_id=old.player_id).aupdate(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    with pytest.raises(BadCredentials):
        await account_login(username=username(), password="wrong-one-1", ip_address=IP)
    await LoginLockout.objects.aupdate(
        last_failure_at=timezone.now() - timedelta(seconds=settings.GAME_PLAYER_LOCKOUT_S + 1)
    )
    await device_authenticate(device_id=device_id())  # another player's login
    assert not await RefreshSession.objects.filter(account__player_id=old.player_id).aexists()
    with pytest.raises(BadCredentials):
        await account_login(username=username(), password="wrong-one-1", ip_address=IP)
    assert await LoginLockout.objects.acount() == 1  # the cooled-off count is gone

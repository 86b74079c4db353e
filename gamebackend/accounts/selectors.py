"""Reads of player accounts (no writes)."""

from __future__ import annotations

from datetime import datetime

from gamebackend.accounts.models import Account, LoginLockout, RefreshSession


async def account_by_username(*, username: str) -> Account | None:
    return await Account.objects.filter(username=username).afirst()


async def lockout_until(*, username: str, ip_address: str, now: datetime) -> datetime | None:
    """When the username's lockout for this client address ends, if it is locked now."""
    return await (
        LoginLockout.objects.filter(username=username, ip_address=ip_address, locked_until__gt=now)
        .values_list("locked_until", flat=True)
        .afirst()
    )


async def session_player_id(*, public_id: str) -> str:
    return await RefreshSession.objects.values_list("account__player_id", flat=True).aget(
        public_id=public_id
    )

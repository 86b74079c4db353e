from __future__ import annotations

import secrets
from dataclasses import dataclass

from django.conf import settings

from gamebackend.players.services import player_get_or_provision
from gameproto.tickets import mint_ticket

GUEST_ID_BYTES = 9
GUEST_NAME_MAX = 32


@dataclass(frozen=True)
class IssuedTicket:
    player_id: str
    ticket: str
    expires_in: int


def ticket_issue(*, player_id: str) -> IssuedTicket:
    """A single-use connect ticket for ``player_id`` (valid ``GAME_TICKET_TTL_S``)."""
    ttl = int(settings.GAME_TICKET_TTL_S)
    token = mint_ticket(secret=settings.GAME_JWT_SECRET, sub=player_id, ttl_s=ttl)
    return IssuedTicket(player_id=player_id, ticket=token, expires_in=ttl)


async def guest_create(*, name: str = "") -> IssuedTicket:
    """A new guest player (stored now, so the chosen name sticks) and a ticket for it."""
    player_id = f"guest-{secrets.token_urlsafe(GUEST_ID_BYTES)}"
    await player_get_or_provision(player_id=player_id, name=name)
    return ticket_issue(player_id=player_id)


def player_id_for_user(user_pk: int) -> str:
    return f"user.{user_pk}"

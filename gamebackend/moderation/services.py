"""The console's live actions on players and rooms: audited, then announced to every
process over the flow events channel (kind ``console``); the process that holds the
player or the room's members acts (``gateway/console_report.py``)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Final

from django.db import transaction
from django.utils import timezone

import gameproto as p
from gamebackend.audit.services import audit_record
from gamebackend.flow.events import publish
from gamebackend.moderation.models import PlayerBlock

CONSOLE_EVENT: Final = "console"
MAX_BLOCK_MINUTES: Final = 7 * 24 * 60


def player_block(*, player_id: str, minutes: int, reason: str) -> PlayerBlock:
    """Refuse the player's upgrades for ``minutes`` (the caller kicks and audits)."""
    until = timezone.now() + timedelta(minutes=minutes)
    return PlayerBlock.objects.create(player_id=player_id, until=until, reason=reason[:200])


def player_kick(*, player_id: str, reason: str, by: Any, block_minutes: int = 0) -> None:
    """Close the player's connection with 4000 and ``reason`` (audited); with
    ``block_minutes`` their upgrades are refused (``player_blocked``) until then."""
    if not 0 <= block_minutes <= MAX_BLOCK_MINUTES:
        raise ValueError(f"block minutes must be in [0, {MAX_BLOCK_MINUTES}]")
    event: dict[str, Any] = {
        "kind": CONSOLE_EVENT, "action": "kick", "player_id": player_id, "reason": reason,
    }  # fmt: skip
    with transaction.atomic():
        if block_minutes:
            block = player_block(player_id=player_id, minutes=block_minutes, reason=reason)
            event["block_until"] = block.until.timestamp()
        audit_record(
            user=by, kind="block" if block_minutes else "kick", target=player_id,
            action=f"kick+block {block_minutes} min" if block_minutes else "kick",
            detail={"reason": reason},
        )  # fmt: skip
        transaction.on_commit(lambda: publish(event))


def player_notice(*, player_id: str, text: str, by: Any) -> None:
    """Send the player a system message (``notice``) on their reliable stream (audited)."""
    if not text or len(text) > p.MAX_NOTICE_LENGTH:
        raise ValueError(f"a notice is 1 to {p.MAX_NOTICE_LENGTH} characters")
    event = {"kind": CONSOLE_EVENT, "action": "notice", "player_id": player_id, "text": text}
    with transaction.atomic():
        audit_record(
            user=by, kind="notice", target=player_id, action="notice", detail={"text": text}
        )
        transaction.on_commit(lambda: publish(event))


def player_describe_request(*, player_id: str, key: str) -> None:
    """Ask the process holding the player to write the session's detail under ``key``."""
    publish({"kind": CONSOLE_EVENT, "action": "describe", "player_id": player_id, "key": key})


def room_close(*, room_id: str, by: Any) -> None:
    """An operator closes a room (audited): every member leaves it, as if they had sent
    ``leave``, and gets a ``notice``; the emptied room then ends like any idle room."""
    event = {"kind": CONSOLE_EVENT, "action": "close_room", "room": room_id}
    with transaction.atomic():
        audit_record(user=by, kind="room", target=room_id, action="close")
        transaction.on_commit(lambda: publish(event))

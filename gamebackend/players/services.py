from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

import gameproto as p
from gamebackend.audit.services import audit_record
from gamebackend.flow.events import publish
from gamebackend.players.models import Player, PlayerBlock
from gamebackend.players.state import PlayerRecord

STATE_FIELDS = ("x", "y", "rev")


async def player_get_or_provision(*, player_id: str, name: str = "") -> Player:
    """The player's stored state; a validly authenticated unknown player is created."""
    player, _ = await Player.objects.aget_or_create(player_id=player_id, defaults={"name": name})
    return player


async def player_record_load(*, player_id: str) -> PlayerRecord:
    """The player's stored record (an unknown, validly authenticated player is created)."""
    return PlayerRecord.of(await player_get_or_provision(player_id=player_id))


def player_states_save(*, states: Iterable[Mapping[str, Any]]) -> int:
    """Bulk-save player states; a state older (lower ``rev``) than the stored one loses.

    Idempotent: re-running with the same states changes nothing. Returns rows written.
    """
    latest: dict[str, Mapping[str, Any]] = {}
    for state in states:
        pid = str(state["player_id"])
        if pid not in latest or int(state["rev"]) > int(latest[pid]["rev"]):
            latest[pid] = state
    if not latest:
        return 0
    now = timezone.now()
    written = 0
    with transaction.atomic():
        existing = set(
            Player.objects.filter(player_id__in=latest).values_list("player_id", flat=True)
        )
        missing = [
            Player(player_id=pid, x=s["x"], y=s["y"], rev=s["rev"], last_seen_at=now)
            for pid, s in latest.items()
            if pid not in existing
        ]
        if missing:
            # A concurrent provision may win the insert; the update below then applies.
            Player.objects.bulk_create(missing, ignore_conflicts=True)
        for pid, state in latest.items():
            written += Player.objects.filter(player_id=pid, rev__lt=int(state["rev"])).update(
                x=float(state["x"]),
                y=float(state["y"]),
                rev=int(state["rev"]),
                last_seen_at=now,
                updated_at=now,
            )
    return written + len(missing)


def player_block(*, player_id: str, minutes: int, reason: str) -> PlayerBlock:
    """Refuse the player's upgrades for ``minutes`` (the caller kicks and audits)."""
    until = timezone.now() + timedelta(minutes=minutes)
    return PlayerBlock.objects.create(player_id=player_id, until=until, reason=reason[:200])


# The console's commands reach the node holding the player over the flow events channel
# (gateway/console_report.py handles kind "console").
CONSOLE_EVENT = "console"
MAX_BLOCK_MINUTES = 7 * 24 * 60


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
    """Ask the node holding the player to write the session's detail under ``key``."""
    publish({"kind": CONSOLE_EVENT, "action": "describe", "player_id": player_id, "key": key})

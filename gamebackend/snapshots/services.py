"""Snapshots: take, record, restore and prune (docs/DURABILITY.md).

The public API the console builds on: ``snapshot_take``, ``snapshot_restore`` (and the
selectors ``snapshot_list_for_entity``, ``snapshot_get``). Audit rows are written by
``snapshot_audit_write`` (action names ``snapshot.take``, ``snapshot.restore``), the one
place to hook a wider audit log onto.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Count
from django.utils import timezone

from gamebackend.audit.models import AuditEntry
from gamebackend.audit.services import audit_record
from gamebackend.events.services import event_emit_durable
from gamebackend.players.live import live_players
from gamebackend.players.selectors import player_record_get
from gamebackend.players.services import player_state_force
from gamebackend.players.state import ENTITY_PLAYER, PlayerRecord
from gamebackend.rooms.version import ENTITY_ROOM
from gamebackend.snapshots.models import Snapshot, SnapshotAudit

logger = logging.getLogger(__name__)

REASONS = frozenset(Snapshot.Reason.values)
AUDIT_TAKE = "snapshot.take"
AUDIT_RESTORE = "snapshot.restore"
# The console's audit log kind for each snapshot action a person takes.
_AUDIT_KINDS = {AUDIT_TAKE: AuditEntry.Kind.SNAPSHOT, AUDIT_RESTORE: AuditEntry.Kind.RESTORE}


class SnapshotError(ValueError):
    """A snapshot operation that cannot be done (unknown entity kind, nothing to take...)."""


@dataclass(frozen=True)
class RestoreResult:
    snapshot: Snapshot
    pre_restore: Snapshot | None
    # "live:<node>" when the live actor took the state, else "database".
    target: str
    record: PlayerRecord


def _size(payload: Mapping[str, Any]) -> int:
    return len(json.dumps(payload, separators=(",", ":")))


def snapshot_record(
    *,
    entity_kind: str,
    entity_id: str,
    lsn: int,
    reason: str,
    payload: Mapping[str, Any],
    taken_at: datetime | None = None,
) -> Snapshot:
    if reason not in REASONS:
        raise SnapshotError(f"unknown snapshot reason {reason!r}")
    return Snapshot.objects.create(
        entity_kind=entity_kind,
        entity_id=entity_id,
        lsn=lsn,
        reason=reason,
        payload=dict(payload),
        size=_size(payload),
        taken_at=taken_at or timezone.now(),
    )


def snapshots_record_many(*, snapshots: Iterable[Mapping[str, Any]]) -> int:
    """Record snapshots a node took (periodic, logout, shutdown); JSON dicts with
    ``kind`` (``player`` or ``room``), ``reason``, ``taken_at`` (epoch seconds) and
    ``state`` (a player's record, or a sim room's version). One INSERT."""
    rows = []
    for item in snapshots:
        reason = str(item["reason"])
        if reason not in REASONS:
            raise SnapshotError(f"unknown snapshot reason {reason!r}")
        kind = str(item.get("kind", ENTITY_PLAYER))
        state = dict(item["state"])
        if kind == ENTITY_ROOM:
            # A sim room's version (rooms/version.py RoomVersion.to_json), kept as sent.
            payload, entity_id, lsn = state, str(state["room"]), int(state["lsn"])
        else:
            record = PlayerRecord.from_json(state)
            payload, entity_id, lsn = record.to_json(), record.player_id, record.lsn
        taken = datetime.fromtimestamp(float(item["taken_at"]), tz=timezone.get_current_timezone())
        rows.append(
            Snapshot(
                entity_kind=kind,
                entity_id=entity_id,
                lsn=lsn,
                reason=reason,
                payload=payload,
                size=_size(payload),
                taken_at=taken,
            )
        )
    Snapshot.objects.bulk_create(rows)
    return len(rows)


def snapshot_audit_write(
    *, action: str, snapshot: Snapshot | None, by: Any, detail: Mapping[str, Any]
) -> SnapshotAudit:
    """Append one audit row to the snapshot's own trail and, for a person's take or
    restore, to the console's audit log (kinds ``snapshot`` and ``restore``)."""
    user = by if getattr(by, "pk", None) is not None else None
    label = getattr(by, "get_username", lambda: str(by or ""))()
    kind = _AUDIT_KINDS.get(action)
    if kind is not None and snapshot is not None:
        audit_record(
            user=user,
            kind=kind,
            target=f"{snapshot.entity_kind} {snapshot.entity_id}",
            action=f"{action.removeprefix('snapshot.')} #{snapshot.pk}",
            detail={"snapshot": snapshot.pk, "lsn": snapshot.lsn, **detail},
        )
    return SnapshotAudit.objects.create(
        action=action,
        snapshot=snapshot,
        entity_kind=snapshot.entity_kind if snapshot else str(detail.get("entity_kind", "")),
        entity_id=snapshot.entity_id if snapshot else str(detail.get("entity_id", "")),
        by=user,
        by_label=str(label)[:150],
        detail=dict(detail),
    )


def snapshot_subject_current(
    *, entity_kind: str = ENTITY_PLAYER, entity_id: str
) -> tuple[PlayerRecord, bool]:
    """The version a snapshot taken now would hold, and whether it is the live actor's
    (online: it may be ahead of the row by the flush interval) or the stored row's."""
    if entity_kind != ENTITY_PLAYER:
        raise SnapshotError(f"snapshots of {entity_kind!r} are not supported")
    live = live_players().current(entity_id)
    if live is not None:
        return live, True
    stored = player_record_get(player_id=entity_id)
    if stored is None:
        raise SnapshotError(f"no player {entity_id!r}")
    return stored, False


def snapshot_take(
    *, entity_kind: str = ENTITY_PLAYER, entity_id: str, reason: str = "manual", by: Any = None
) -> Snapshot:
    """Snapshot the entity's current version: the live actor's if online, else the row."""
    record, _ = snapshot_subject_current(entity_kind=entity_kind, entity_id=entity_id)
    with transaction.atomic():
        snap = snapshot_record(
            entity_kind=entity_kind,
            entity_id=entity_id,
            lsn=record.lsn,
            reason=reason,
            payload=record.to_json(),
        )
        if by is not None:
            snapshot_audit_write(
                action=AUDIT_TAKE, snapshot=snap, by=by, detail={"lsn": record.lsn}
            )
        event_emit_durable(
            type="snapshot.taken",
            data={"snapshot": snap.pk, "entity_id": entity_id, "lsn": record.lsn, "reason": reason},
        )
    return snap


def snapshot_restore(*, snapshot_id: int, by: Any) -> RestoreResult:
    """Put a snapshot's state back: a ``pre_restore`` snapshot of the current state first,
    then into the live actor through its mailbox when the player is online (on whichever
    node holds them), else into the database, above every stored LSN. Audited."""
    snap = Snapshot.objects.get(pk=snapshot_id)
    if snap.entity_kind != ENTITY_PLAYER:
        raise SnapshotError(f"snapshots of {snap.entity_kind!r} cannot be restored")
    wanted = PlayerRecord.from_json(dict(snap.payload))
    pre = snapshot_take(
        entity_kind=snap.entity_kind, entity_id=snap.entity_id, reason="pre_restore"
    )
    stored = player_record_get(player_id=snap.entity_id)
    floor = stored.lsn if stored is not None else 0
    live = live_players()
    node = live.where(snap.entity_id)
    record: PlayerRecord | None = None
    if node is not None:
        record = live.restore(wanted, floor=max(floor, pre.lsn))
    target = f"live:{node}" if record is not None else "database"
    if record is None:
        record = player_state_force(record=wanted, floor=max(floor, pre.lsn))
    snapshot_audit_write(
        action=AUDIT_RESTORE,
        snapshot=snap,
        by=by,
        detail={"target": target, "lsn": record.lsn, "pre_restore": pre.pk},
    )
    event_emit_durable(
        type="snapshot.restored",
        data={
            "snapshot": snap.pk,
            "entity_id": snap.entity_id,
            "target": target,
            "lsn": record.lsn,
        },
    )
    logger.info(
        "snapshot %s restored to %s %s (%s, lsn %d)",
        snap.pk, snap.entity_kind, snap.entity_id, target, record.lsn,
    )  # fmt: skip
    return RestoreResult(snapshot=snap, pre_restore=pre, target=target, record=record)


def snapshots_prune(
    *, now: datetime | None = None, keep: int | None = None, daily_days: int | None = None
) -> int:
    """Retention: per entity the newest ``keep`` snapshots plus the newest of each day for
    the last ``daily_days`` days stay; the rest is deleted. Returns how many were deleted."""
    now = now or timezone.now()
    keep = settings.GAME_SNAPSHOT_KEEP if keep is None else keep
    days = settings.GAME_SNAPSHOT_DAILY_DAYS if daily_days is None else daily_days
    since = now - timedelta(days=days)
    crowded = (
        Snapshot.objects.values("entity_kind", "entity_id")
        .annotate(n=Count("id"))
        .filter(n__gt=keep)
    )
    deleted = 0
    for entity in crowded.iterator():
        rows = Snapshot.objects.filter(
            entity_kind=entity["entity_kind"], entity_id=entity["entity_id"]
        ).values_list("id", "taken_at")
        drop: list[int] = []
        days_kept: set[Any] = set()
        for index, (pk, taken_at) in enumerate(rows):
            day = timezone.localtime(taken_at).date()
            if index < keep or (taken_at >= since and day not in days_kept):
                days_kept.add(day)
            else:
                drop.append(pk)
        if drop:
            deleted += Snapshot.objects.filter(pk__in=drop).delete()[0]
    return deleted

"""Snapshots: take, record from nodes, restore (offline: the database; online: the live
actor through its mailbox), retention, the command."""

from __future__ import annotations

import io
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.utils import timezone

from gamebackend.players.live import register_live_players
from gamebackend.players.models import Player
from gamebackend.players.services import player_states_upsert
from gamebackend.players.state import PlayerRecord
from gamebackend.snapshots.models import Snapshot, SnapshotAudit
from gamebackend.snapshots.selectors import snapshot_get, snapshot_list_for_entity
from gamebackend.snapshots.services import (
    SnapshotError,
    snapshot_record,
    snapshot_restore,
    snapshot_take,
    snapshots_prune,
    snapshots_record_many,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator() -> Any:
    return get_user_model().objects.create_user("op", password="long-Enough-pass-4711")


class OneLivePlayer:
    """A live actor stand-in for the port (the real one is in test_snapshots_e2e.py)."""

    def __init__(self, record: PlayerRecord) -> None:
        self.record = record
        self.restores: list[tuple[PlayerRecord, int]] = []

    def where(self, player_id: str) -> str | None:
        return "node-a" if player_id == self.record.player_id else None

    def current(self, player_id: str) -> PlayerRecord | None:
        return self.record if player_id == self.record.player_id else None

    def restore(self, record: PlayerRecord, *, floor: int) -> PlayerRecord | None:
        self.restores.append((record, floor))
        self.record = self.record.restored(record, floor=floor)
        return self.record


@pytest.fixture
def live() -> Any:
    from gamebackend.gateway.live import GatewayLivePlayers

    yield
    register_live_players(GatewayLivePlayers())


def test_take_list_get(operator: Any) -> None:
    Player.objects.create(player_id="p", x=3, y=4, lsn=7)
    snap = snapshot_take(entity_id="p", by=operator)
    assert (snap.lsn, snap.reason, snap.payload["x"]) == (7, "manual", 3.0)
    assert snap.size == len('{"player_id":"p","x":3.0,"y":4.0,"lsn":7}')
    assert list(snapshot_list_for_entity(entity_id="p")) == [snap]
    assert snapshot_get(snapshot_id=snap.pk) == snap
    assert SnapshotAudit.objects.get().action == "snapshot.take"
    with pytest.raises(SnapshotError):
        snapshot_take(entity_id="nobody")
    with pytest.raises(SnapshotError):
        snapshot_take(entity_kind="room", entity_id="p")


def test_nodes_record_batches_of_snapshots() -> None:
    now = timezone.now().timestamp()
    items = [
        {
            "kind": "player",
            "reason": r,
            "taken_at": now,
            "state": PlayerRecord("p", 1, 2, n).to_json(),
        }
        for n, r in enumerate(("periodic", "logout", "shutdown"))
    ]
    assert snapshots_record_many(snapshots=items) == 3
    assert sorted(Snapshot.objects.values_list("reason", flat=True)) == [
        "logout", "periodic", "shutdown",
    ]  # fmt: skip
    with pytest.raises(SnapshotError):
        snapshots_record_many(snapshots=[{**items[0], "reason": "whim"}])


def test_restore_of_an_offline_player_goes_to_the_database(operator: Any) -> None:
    Player.objects.create(player_id="p", x=4242, lsn=5)
    old = snapshot_take(entity_id="p")
    player_states_upsert(states=[PlayerRecord("p", 0.0, 0.0, 9).to_json()])
    result = snapshot_restore(snapshot_id=old.pk, by=operator)
    assert result.target == "database"
    row = Player.objects.get(player_id="p")
    assert (row.x, row.lsn) == (4242.0, 10)
    assert result.pre_restore is not None
    assert (result.pre_restore.reason, result.pre_restore.payload["x"]) == ("pre_restore", 0.0)
    audit = SnapshotAudit.objects.get(action="snapshot.restore")
    assert (audit.by, audit.entity_id, audit.detail["target"]) == (operator, "p", "database")
    # A flush still in flight from before the restore loses against it.
    player_states_upsert(states=[PlayerRecord("p", 1.0, 0.0, 10).to_json()])
    assert Player.objects.get(player_id="p").x == 4242.0


def test_restore_of_an_online_player_goes_through_the_live_actor(operator: Any, live: None) -> None:
    Player.objects.create(player_id="p", x=1, lsn=3)
    snap = snapshot_take(entity_id="p")
    actor = OneLivePlayer(PlayerRecord("p", 5.0, 0.0, 20))  # ahead of the row
    register_live_players(actor)
    result = snapshot_restore(snapshot_id=snap.pk, by=operator)
    assert result.target == "live:node-a"
    assert (result.record.x, result.record.lsn) == (1.0, 21)
    assert result.pre_restore is not None
    assert result.pre_restore.payload["x"] == 5.0  # the live state, not the row
    assert Player.objects.get(player_id="p").x == 1.0  # the actor flushes it, not us


def test_retention_keeps_the_newest_and_one_per_day(settings: Any) -> None:
    now = timezone.now()
    payload = PlayerRecord("p").to_json()
    for hours in range(0, 24 * 10, 6):  # every 6 h for 10 days: 40 snapshots
        snapshot_record(
            entity_kind="player", entity_id="p", lsn=hours, reason="periodic",
            payload=payload, taken_at=now - timedelta(hours=hours),
        )  # fmt: skip
    snapshot_record(entity_kind="player", entity_id="q", lsn=1, reason="manual", payload=payload)
    deleted = snapshots_prune(now=now, keep=5, daily_days=7)
    kept = list(Snapshot.objects.filter(entity_id="p").values_list("taken_at", flat=True))
    assert len(kept) + deleted == 40
    newest = sorted(kept, reverse=True)[:5]
    assert newest == [now - timedelta(hours=h) for h in range(0, 30, 6)]
    days = {timezone.localtime(t).date() for t in kept}
    assert len(days) == len(kept) - 5 + len({timezone.localtime(t).date() for t in newest})
    assert min(kept) >= now - timedelta(days=7, hours=6)
    assert Snapshot.objects.filter(entity_id="q").count() == 1
    assert snapshots_prune(now=now, keep=5, daily_days=7) == 0  # idempotent


def test_the_command_lists_takes_and_restores(operator: Any) -> None:
    Player.objects.create(player_id="p", x=8, lsn=2)
    out = io.StringIO()
    call_command("snapshot", "take", "p", "--by", "op", stdout=out)
    snap = Snapshot.objects.get()
    assert f"snapshot {snap.pk}: p at lsn 2" in out.getvalue()
    call_command("snapshot", "list", "p", stdout=out)
    assert "manual" in out.getvalue()
    Player.objects.filter(player_id="p").update(x=0)
    call_command("snapshot", "restore", str(snap.pk), "--by", "op", stdout=out)
    assert "into database (lsn 3" in out.getvalue()
    assert Player.objects.get(player_id="p").x == 8.0
    with pytest.raises(CommandError, match="no such snapshot"):
        call_command("snapshot", "restore", "999999", "--by", "op")
    with pytest.raises(CommandError, match="no user"):
        call_command("snapshot", "restore", str(snap.pk), "--by", "ghost")

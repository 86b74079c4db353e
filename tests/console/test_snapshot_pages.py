"""The console's snapshot pages without a browser: history, comparison, manual snapshot,
restore with its confirmation page (operators; audited), and the viewer's 403s."""

from __future__ import annotations

import pytest

from gamebackend.audit.models import AuditEntry
from gamebackend.flow.apps import OPERATORS_GROUP, STAFF_VIEWERS_GROUP
from gamebackend.players.models import Player
from gamebackend.players.services import player_states_upsert
from gamebackend.players.state import PlayerRecord
from gamebackend.snapshots.models import Snapshot
from gamebackend.snapshots.services import snapshot_record
from tests.console.staff import staff_client

pytestmark = pytest.mark.django_db


def two_versions(player_id: str = "p1") -> tuple[Snapshot, Snapshot]:
    """Snapshots at (1, 1) and (5, 1); the stored row is at (9, 9), LSN 7."""
    old = snapshot_record(
        entity_kind="player", entity_id=player_id, lsn=2, reason="periodic",
        payload=PlayerRecord(player_id, 1.0, 1.0, 2).to_json(),
    )  # fmt: skip
    new = snapshot_record(
        entity_kind="player", entity_id=player_id, lsn=4, reason="logout",
        payload=PlayerRecord(player_id, 5.0, 1.0, 4).to_json(),
    )  # fmt: skip
    player_states_upsert(states=[PlayerRecord(player_id, 9.0, 9.0, 7).to_json()])
    return old, new


def test_the_history_lists_versions_and_compares_two_side_by_side() -> None:
    old, new = two_versions()
    client = staff_client("viewer", STAFF_VIEWERS_GROUP)
    listing = client.get("/console/snapshots/").content.decode()
    assert 'href="?kind=player&amp;id=p1"' in listing  # recently snapshotted
    page = client.get("/console/snapshots/?kind=player&id=p1").content.decode()
    assert "2 kept versions" in page
    assert "Periodic" in page
    assert "Logout" in page
    compare = client.get(f"/console/snapshots/?kind=player&id=p1&a={new.pk}&b={old.pk}")
    body = compare.content.decode()
    # The older version goes left whichever way round they were picked; x and lsn differ.
    assert "2 fields differ" in body
    assert '<tr class="diff-changed"><td><code>x</code></td>' in body
    left, right = body.index("<code>1.0</code>"), body.index("<code>5.0</code>")
    assert left < right
    assert '<tr class="diff-same"><td><code>y</code></td>' in body


def test_a_viewer_sees_no_restore_or_take_and_is_refused_both() -> None:
    old, _ = two_versions()
    client = staff_client("viewer", STAFF_VIEWERS_GROUP)
    page = client.get("/console/snapshots/?kind=player&id=p1").content.decode()
    assert "Restore" not in page
    assert "Take a snapshot now" not in page
    assert client.get(f"/console/snapshots/{old.pk}/restore/").status_code == 403
    assert client.post(f"/console/snapshots/{old.pk}/restore/").status_code == 403
    assert client.post("/console/snapshots/take/", {"id": "p1"}).status_code == 403
    assert Player.objects.get(player_id="p1").x == 9.0
    assert not AuditEntry.objects.exists()


def test_an_operator_confirms_then_restores_an_offline_player_and_it_is_audited() -> None:
    old, _ = two_versions()
    client = staff_client("op", OPERATORS_GROUP)
    history = client.get("/console/snapshots/?kind=player&id=p1").content.decode()
    assert f'href="/console/snapshots/{old.pk}/restore/"' in history
    confirm = client.get(f"/console/snapshots/{old.pk}/restore/").content.decode()
    # The confirmation page shows what changes against the stored state (x, y and lsn).
    assert "3 fields" in confirm
    assert "pre_restore" in confirm
    assert Player.objects.get(player_id="p1").x == 9.0  # nothing happened on GET

    done = client.post(f"/console/snapshots/{old.pk}/restore/", follow=True)
    assert "into the database (the player is offline)" in done.content.decode()
    row = Player.objects.get(player_id="p1")
    assert (row.x, row.y) == (1.0, 1.0)
    assert row.lsn > 7  # above every stored version
    assert Snapshot.objects.filter(entity_id="p1", reason="pre_restore").count() == 1
    entry = AuditEntry.objects.get()
    assert (entry.kind, entry.target, entry.action) == (
        "restore",
        "player p1",
        f"restore #{old.pk}",
    )
    assert entry.user is not None
    assert entry.user.get_username() == "op"
    assert entry.detail["target"] == "database"


def test_an_operator_takes_a_snapshot_now() -> None:
    player_states_upsert(states=[PlayerRecord("p2", 3.0, 4.0, 5).to_json()])
    client = staff_client("op", OPERATORS_GROUP)
    done = client.post("/console/snapshots/take/", {"id": "p2"}, follow=True)
    assert "at LSN 5" in done.content.decode()
    snap = Snapshot.objects.get(entity_id="p2")
    assert (snap.reason, snap.payload["x"]) == ("manual", 3.0)
    assert AuditEntry.objects.get().kind == "snapshot"
    unknown = client.post("/console/snapshots/take/", {"id": "nobody"}, follow=True)
    assert "No player &#x27;nobody&#x27;" in unknown.content.decode()


def test_room_versions_are_listed_but_not_restorable() -> None:
    snap = snapshot_record(
        entity_kind="room", entity_id="arena", lsn=3, reason="periodic",
        payload={"room": "arena", "lsn": 3, "tick": 90},
    )  # fmt: skip
    client = staff_client("op", OPERATORS_GROUP)
    page = client.get("/console/snapshots/?kind=room&id=arena").content.decode()
    assert "1 kept version" in page
    assert "Restore" not in page
    assert client.get(f"/console/snapshots/{snap.pk}/restore/").status_code == 404


class UnansweringNode:
    """The player is online on a node whose actor does not answer (busy or going away)."""

    def where(self, player_id: str) -> str | None:
        return "node-b"

    def current(self, player_id: str) -> PlayerRecord | None:
        return None

    def restore(self, record: PlayerRecord, *, floor: int) -> PlayerRecord | None:
        raise TimeoutError("no answer within 3 s")


def test_a_restore_the_live_actor_does_not_confirm_is_an_error_not_a_crash() -> None:
    from gamebackend.players.live import live_players, register_live_players

    old, _ = two_versions()
    client = staff_client("op", OPERATORS_GROUP)
    before = live_players()
    register_live_players(UnansweringNode())
    try:
        done = client.post(f"/console/snapshots/{old.pk}/restore/", follow=True)
    finally:
        register_live_players(before)
    assert done.status_code == 200
    assert "did not confirm the restore" in done.content.decode()
    # Not written to the database behind the online player's back, and not audited.
    assert Player.objects.get(player_id="p1").x == 9.0
    assert not AuditEntry.objects.exists()

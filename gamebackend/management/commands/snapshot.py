"""Snapshots from the command line: list, take, restore (docs/DURABILITY.md).

    manage.py snapshot list PLAYER [--limit N]
    manage.py snapshot take PLAYER
    manage.py snapshot restore SNAPSHOT_ID --by USERNAME

A restore goes through ``snapshot_restore``: a ``pre_restore`` snapshot first, then the
live actor (cluster profile: on whichever node holds the player) or the database; audited.
On a single machine this process cannot see the node's live players: restore an online
player from the console, which runs in the node's process.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from gamebackend.snapshots.models import Snapshot
from gamebackend.snapshots.selectors import snapshot_list_for_entity
from gamebackend.snapshots.services import SnapshotError, snapshot_restore, snapshot_take

DEFAULT_LIST_LIMIT = 20


class Command(BaseCommand):
    help = "List, take or restore entity snapshots (restore is audited)."

    def add_arguments(self, parser: Any) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        listing = sub.add_parser("list", help="a player's snapshots, newest first")
        listing.add_argument("player")
        listing.add_argument("--limit", type=int, default=DEFAULT_LIST_LIMIT)
        take = sub.add_parser("take", help="snapshot a player's current state (manual)")
        take.add_argument("player")
        take.add_argument("--by", default="", help="username recorded in the audit")
        restore = sub.add_parser("restore", help="put a snapshot's state back")
        restore.add_argument("snapshot_id", type=int)
        restore.add_argument("--by", required=True, help="username recorded in the audit")

    def _user(self, username: str) -> Any:
        if not username:
            return None
        try:
            return get_user_model().objects.get_by_natural_key(username)
        except get_user_model().DoesNotExist:
            raise CommandError(f"no user {username!r}") from None

    def handle(self, *args: Any, **opts: Any) -> None:
        action = opts["action"]
        try:
            if action == "list":
                for snap in snapshot_list_for_entity(entity_id=opts["player"], limit=opts["limit"]):
                    self.stdout.write(
                        f"{snap.pk:8} lsn={snap.lsn:<8} {snap.reason:11} "
                        f"{snap.taken_at.isoformat(timespec='seconds')} {snap.payload}"
                    )
            elif action == "take":
                snap = snapshot_take(entity_id=opts["player"], by=self._user(opts["by"]))
                self.stdout.write(f"snapshot {snap.pk}: {snap.entity_id} at lsn {snap.lsn}")
            else:
                result = snapshot_restore(
                    snapshot_id=opts["snapshot_id"], by=self._user(opts["by"])
                )
                self.stdout.write(
                    f"restored snapshot {result.snapshot.pk} into {result.target} "
                    f"(lsn {result.record.lsn}; pre_restore snapshot "
                    f"{result.pre_restore.pk if result.pre_restore else '-'})"
                )
        except Snapshot.DoesNotExist:
            raise CommandError("no such snapshot") from None
        except SnapshotError as exc:
            raise CommandError(str(exc)) from None

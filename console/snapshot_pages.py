"""The console's snapshot pages: per player or room, the kept versions (LSN, time, reason,
size), a side-by-side comparison of any two, a manual snapshot, and restore (operators,
after a confirmation page, through ``snapshot_restore``: audited, and an online player's
live actor takes the state and pushes it to the client)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Final

from django.contrib import admin, messages
from django.core.exceptions import ObjectDoesNotExist
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.http import urlencode

from console.jsondiff import SAME, json_diff
from console.pages import render_page, require_operator
from gamebackend.players.state import ENTITY_PLAYER
from gamebackend.rooms.version import ENTITY_ROOM
from gamebackend.snapshots.selectors import (
    snapshot_entities_recent,
    snapshot_get,
    snapshot_list_for_entity,
)
from gamebackend.snapshots.services import (
    SnapshotError,
    snapshot_restore,
    snapshot_subject_current,
    snapshot_take,
)

if TYPE_CHECKING:  # read through the selectors, never the model (docs/ARCHITECTURE.md)
    from gamebackend.snapshots.models import Snapshot

logger = logging.getLogger(__name__)

ENTITY_KINDS: Final = (ENTITY_PLAYER, ENTITY_ROOM)
# Versions listed on an entity's page (retention keeps fewer; docs/DURABILITY.md).
HISTORY_LIMIT: Final = 200
# Entities listed when none is asked for.
RECENT_ENTITIES: Final = 50
# Only players are restored (a room's version is kept for inspection and comparison).
RESTORABLE_KINDS: Final = frozenset({ENTITY_PLAYER})


def _history_url(kind: str, entity_id: str, **extra: Any) -> str:
    query = urlencode({"kind": kind, "id": entity_id, **extra})
    return f"{reverse('admin:console_snapshots')}?{query}"


def _snapshot(raw: str | None) -> Snapshot | None:
    try:
        return snapshot_get(snapshot_id=int(raw or ""))
    except (ValueError, ObjectDoesNotExist):
        return None


def _comparison(left: Snapshot, right: Snapshot) -> dict[str, Any]:
    # The older version on the left, whichever way round they were picked.
    if (left.lsn, left.taken_at, left.pk) > (right.lsn, right.taken_at, right.pk):
        left, right = right, left
    rows = json_diff(left.payload, right.payload)
    return {
        "left": left,
        "right": right,
        "rows": rows,
        "changed": sum(1 for row in rows if row.change != SAME),
    }


def snapshots(site: admin.AdminSite, request: HttpRequest) -> HttpResponse:
    kind = request.GET.get("kind", ENTITY_PLAYER)
    if kind not in ENTITY_KINDS:
        kind = ENTITY_PLAYER
    entity_id = request.GET.get("id", "").strip()
    history = (
        list(snapshot_list_for_entity(entity_kind=kind, entity_id=entity_id, limit=HISTORY_LIMIT))
        if entity_id
        else []
    )
    compare = None
    if "a" in request.GET or "b" in request.GET:
        left, right = _snapshot(request.GET.get("a")), _snapshot(request.GET.get("b"))
        if left is None or right is None:
            messages.error(request, "pick two kept versions to compare")
        else:
            compare = _comparison(left, right)
    # Preselected for "compare": the two newest versions.
    picked = (
        (compare["left"].pk, compare["right"].pk)
        if compare
        else (history[1].pk if len(history) > 1 else None, history[0].pk if history else None)
    )
    return render_page(
        site, request, "console/snapshots.html", "Snapshots",
        kind=kind, kinds=ENTITY_KINDS, entity_id=entity_id, history=history, compare=compare,
        picked_left=picked[0], picked_right=picked[1],
        restorable=kind in RESTORABLE_KINDS,
        recent=[] if entity_id else snapshot_entities_recent(limit=RECENT_ENTITIES),
    )  # fmt: skip


def snapshot_take_now(site: admin.AdminSite, request: HttpRequest) -> HttpResponse:
    """Snapshot a player's current version now (operators; audited)."""
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    require_operator(request)
    entity_id = request.POST.get("id", "").strip()
    try:
        snap = snapshot_take(entity_id=entity_id, reason="manual", by=request.user)
    except SnapshotError as exc:
        messages.error(request, str(exc))
    except Exception as exc:  # the live actor did not answer (its node busy or going away)
        logger.exception("snapshot of %s failed", entity_id)
        messages.error(request, f"no snapshot taken: {exc!r}")
    else:
        messages.success(request, f"snapshot {snap.pk} taken: {entity_id} at LSN {snap.lsn}")
    return redirect(_history_url(ENTITY_PLAYER, entity_id))


def snapshot_restore_page(
    site: admin.AdminSite, request: HttpRequest, snapshot_id: int
) -> HttpResponse:
    """GET: what the restore would change (against the live actor's state when the player
    is online, else the stored one); POST: restore."""
    require_operator(request)
    snap = _snapshot(str(snapshot_id))
    if snap is None:
        raise Http404("no such snapshot")
    if snap.entity_kind not in RESTORABLE_KINDS:
        raise Http404(f"snapshots of a {snap.entity_kind} are not restored")
    if request.method == "POST":
        try:
            result = snapshot_restore(snapshot_id=snap.pk, by=request.user)
        except SnapshotError as exc:
            messages.error(request, str(exc))
        except Exception as exc:  # the live actor did not answer (its node busy or going away)
            logger.exception("restore of snapshot %s failed", snap.pk)
            messages.error(
                request,
                f"the live actor did not confirm the restore ({exc!r}); check the player's "
                "state before trying again",
            )
        else:
            where = (
                f"into the live actor on {result.target.removeprefix('live:')}"
                if result.target.startswith("live:")
                else "into the database (the player is offline)"
            )
            messages.success(
                request,
                f"snapshot {snap.pk} restored {where}: {snap.entity_id} is now at LSN "
                f"{result.record.lsn}",
            )
        return redirect(_history_url(snap.entity_kind, snap.entity_id))
    if request.method != "GET":
        return HttpResponseNotAllowed(["GET", "POST"])
    try:
        current, live = snapshot_subject_current(entity_id=snap.entity_id)
    except SnapshotError:  # no row yet: the restore creates it
        current, live = None, False
    rows = json_diff(current.to_json() if current else {}, snap.payload)
    return render_page(
        site, request, "console/snapshot_restore.html", f"Restore snapshot {snap.pk}",
        snap=snap, current=current, live=live, rows=rows,
        changed=sum(1 for row in rows if row.change != SAME),
        back=_history_url(snap.entity_kind, snap.entity_id),
    )  # fmt: skip

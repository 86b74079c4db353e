"""The event log: recorded in batches, pruned by age."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from gamebackend.events.models import Event
from gamebackend.events.services import event_emit_durable, events_prune, events_record
from gamebackend.events.tasks import prune_events, record_events

pytestmark = pytest.mark.django_db


def test_events_are_recorded_and_unknown_types_skipped() -> None:
    now = time.time()
    assert record_events.apply(args=([
        {"type": "player.online", "data": {"player_id": "p"}, "at": now, "node": "n1"},
        {"type": "player.vanished", "data": {}, "at": now},
    ],)).get() == 1  # fmt: skip
    event = Event.objects.get()
    assert (event.type, event.node, event.data) == ("player.online", "n1", {"player_id": "p"})


def test_retention_deletes_old_events() -> None:
    old = (timezone.now() - timedelta(days=30)).timestamp()
    events_record(
        events=[{"type": "rule.changed", "at": old}, {"type": "rule.changed", "at": time.time()}]
    )
    assert events_prune(days=14) == 1
    assert Event.objects.count() == 1
    assert prune_events.apply().get() == 0


def test_durable_events_are_sent_only_when_the_transaction_commits(
    django_capture_on_commit_callbacks: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent: list[Any] = []
    monkeypatch.setattr(
        "gamebackend.celery.app.send_task", lambda name, args: sent.append((name, args))
    )
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        event_emit_durable(type="snapshot.taken", data={"snapshot": 1})
        assert sent == []  # not before the commit
    assert len(callbacks) == 1
    assert sent[0][0] == "gamebackend.events.record"
    assert sent[0][1][0][0]["type"] == "snapshot.taken"
    with pytest.raises(ValueError, match="unknown event type"):
        event_emit_durable(type="nope", data={})

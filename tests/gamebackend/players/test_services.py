"""The flush statement: one bulk upsert per batch, stale and duplicate versions lose."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from gamebackend.players.models import FlushDeadLetter, Player
from gamebackend.players.services import player_state_force, player_states_upsert, upsert_sql
from gamebackend.players.state import PlayerRecord
from gamebackend.players.tasks import flush_batch, retry_delay_s


def state(pid: str, lsn: int, x: float = 0.0) -> dict[str, Any]:
    return PlayerRecord(pid, x, 1.0, lsn).to_json()


def stored() -> dict[str, tuple[float, int]]:
    return {p.player_id: (p.x, p.lsn) for p in Player.objects.all()}


@pytest.mark.django_db
def test_a_batch_is_one_statement_and_stale_or_duplicate_versions_lose() -> None:
    Player.objects.create(player_id="old", x=5, lsn=10)
    batch = [state(f"p{i}", 1, x=i) for i in range(64)] + [state("old", 9, x=99)]
    with CaptureQueriesContext(connection) as queries:
        player_states_upsert(states=batch)
    assert len(queries) == 1
    assert "ON CONFLICT" in queries[0]["sql"]
    rows = stored()
    assert rows["old"] == (5.0, 10)  # lsn 9 < 10: stale, lost
    assert rows["p63"] == (63.0, 1)
    assert len(rows) == 65
    # The same batch again (a redelivery) changes nothing; a newer version wins.
    player_states_upsert(states=batch)
    player_states_upsert(states=[state("old", 11, x=7), state("p1", 1, x=-1)])
    rows = stored()
    assert rows["old"] == (7.0, 11)
    assert rows["p1"] == (1.0, 1)


@pytest.mark.django_db
def test_within_a_batch_the_newest_version_of_a_player_wins() -> None:
    player_states_upsert(states=[state("p", 3, x=3), state("p", 5, x=5), state("p", 4, x=4)])
    assert stored() == {"p": (5.0, 5)}


@pytest.mark.django_db
def test_force_writes_above_the_stored_lsn() -> None:
    Player.objects.create(player_id="p", x=1, lsn=41)
    written = player_state_force(record=PlayerRecord("p", 999.0, 0.0, 3), floor=50)
    assert written.lsn == 51
    assert stored() == {"p": (999.0, 51)}
    # A flush still in flight with the actor's older LSN loses.
    player_states_upsert(states=[state("p", 42, x=6)])
    assert stored() == {"p": (999.0, 51)}


@pytest.mark.cluster
def test_the_same_statement_on_postgresql(cluster_database_url: str) -> None:
    import psycopg

    with psycopg.connect(cluster_database_url, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE players_player (id serial, player_id text UNIQUE, name text,"
            " x float8, y float8, lsn bigint, created_at timestamptz,"
            " updated_at timestamptz, last_seen_at timestamptz)"
        )

        def upsert(rows: list[tuple[str, float, int]]) -> None:
            sql = upsert_sql("players_player", len(rows), lambda n: f'"{n}"')
            params: list[Any] = []
            for pid, x, lsn in rows:
                params += [pid, "", x, 0.0, lsn, "now", "now", "now"]
            conn.execute(sql, params)

        upsert([("a", 1.0, 1), ("b", 2.0, 2)])
        upsert([("a", 9.0, 0), ("b", 3.0, 3)])  # a: stale; b: newer
        upsert([("a", 9.0, 0), ("b", 3.0, 3)])  # a duplicate batch: absorbed
        found = conn.execute("SELECT player_id, x FROM players_player").fetchall()
        assert dict(found) == {"a": 1.0, "b": 3.0}


@pytest.mark.django_db
def test_a_batch_failing_too_often_becomes_a_dead_letter(
    monkeypatch: pytest.MonkeyPatch, settings: Any
) -> None:
    settings.GAME_FLUSH_MAX_RETRIES = 0

    def broken(**kwargs: Any) -> int:
        raise RuntimeError("database says no")

    monkeypatch.setattr("gamebackend.players.tasks.player_states_upsert", broken)
    # Not the worker's breaker: it would start the worker's rule sync in this process.
    monkeypatch.setattr("gamebackend.players.tasks.worker_breaker", lambda name: Direct())
    batch = {"id": "b1", "kind": "player", "states": [state("p", 1)]}
    assert flush_batch.apply(args=(batch,)).get() == 0
    letter = FlushDeadLetter.objects.get()
    assert (letter.batch_id, letter.entities, letter.attempts) == ("b1", 1, 1)
    assert "database says no" in letter.error


class Direct:
    def call_sync(self, fn: Any, /, **kwargs: Any) -> Any:
        return fn(**kwargs)


def test_retry_backoff_doubles_up_to_its_cap() -> None:
    assert [retry_delay_s(n) for n in range(3)] == [0.5, 1.0, 2.0]
    assert retry_delay_s(30) == 30.0

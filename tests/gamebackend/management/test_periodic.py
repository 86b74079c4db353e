"""runnode's beat: each periodic task is sent once per period; a broken broker is retried."""

from __future__ import annotations

from gamebackend.management.periodic import PeriodicTasks, periodic_schedule


def test_tasks_are_sent_when_due_and_failures_wait_for_the_next_period() -> None:
    now = [0.0]
    sent: list[str] = []
    broken = [False]

    def send(name: str) -> None:
        if broken[0]:
            raise ConnectionError("broker down")
        sent.append(name)

    beat = PeriodicTasks({"a": 10.0, "b": 100.0}, send=send, clock=lambda: now[0], first_delay_s=5)
    assert beat.tick() == []
    now[0] = 5.0
    assert beat.tick() == ["a", "b"]
    now[0] = 14.0
    assert beat.tick() == []
    now[0] = 15.0
    broken[0] = True
    assert beat.tick() == []
    broken[0] = False
    now[0] = 25.0
    assert beat.tick() == ["a"]
    now[0] = 105.0
    assert beat.tick() == ["a", "b"]
    assert sent == ["a", "b", "a", "a", "b"]


def test_the_schedule_holds_the_snapshot_retention() -> None:
    assert "gamebackend.snapshots.prune" in periodic_schedule()

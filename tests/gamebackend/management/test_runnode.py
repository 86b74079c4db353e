"""The node supervisor's worker handling, on real (short-lived) child processes.

The end-to-end version, a real ``runnode`` whose worker gets ``kill -9``, is in
tests/gamebackend/test_node.py.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from pathlib import Path

import pytest

from gamebackend.health.supervision import RESTARTING, RUNNING, read_worker_state
from gamebackend.management.commands.runnode import (
    WORKER_RESTART_FIRST_S,
    WORKER_RESTART_MAX_S,
    WORKER_STABLE_S,
    WorkerSupervisor,
    describe_exit,
)

CRASHING = [sys.executable, "-c", "import sys; sys.exit(3)"]
CHILD_WAIT_S = 30


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def crash_and_notice(supervisor: WorkerSupervisor) -> None:
    assert supervisor.proc is not None
    supervisor.proc.wait(timeout=CHILD_WAIT_S)
    supervisor.check()


def test_a_crashed_worker_is_restarted_with_doubling_backoff(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="gamebackend.runnode")
    clock = Clock()
    state_path = tmp_path / "supervisor.json"
    supervisor = WorkerSupervisor(CRASHING, dict(os.environ), state_path, clock=clock)
    supervisor.start()
    first_pid = supervisor.proc.pid if supervisor.proc else 0
    assert read_worker_state(state_path).state == RUNNING  # type: ignore[union-attr]

    crash_and_notice(supervisor)
    first_crash = clock.now
    state = read_worker_state(state_path)
    assert state is not None
    assert (state.state, state.pid, state.restarts) == (RESTARTING, None, 0)
    assert state.last_exit == "exited with code 3"
    assert state.down_since == clock.now
    assert state.next_start_at == clock.now + WORKER_RESTART_FIRST_S
    assert f"worker (pid {first_pid}) exited with code 3 after 0.0 s; restarting it in 1.0 s" in (
        caplog.text
    )

    supervisor.check()  # not due yet
    assert supervisor.proc is None
    delays: list[float] = []
    for _ in range(7):
        clock.now = state.next_start_at or clock.now
        supervisor.check()  # due: a new worker
        assert supervisor.proc is not None
        crash_and_notice(supervisor)
        state = read_worker_state(state_path)
        assert state is not None
        delays.append((state.next_start_at or 0) - clock.now)
    assert delays == [2, 4, 8, 16, WORKER_RESTART_MAX_S, WORKER_RESTART_MAX_S, WORKER_RESTART_MAX_S]
    assert supervisor.restarts == state.restarts == 7
    # One outage: it is down since the first crash of the run.
    assert state.down_since == first_crash
    assert "worker restarted (pid" in caplog.text


def test_a_worker_that_ran_for_a_while_restarts_quickly_again(tmp_path: Path) -> None:
    clock = Clock()
    supervisor = WorkerSupervisor(CRASHING, dict(os.environ), tmp_path / "s.json", clock=clock)
    supervisor.start()
    crash_and_notice(supervisor)
    clock.now += WORKER_RESTART_FIRST_S
    supervisor.check()
    crash_and_notice(supervisor)  # twice in a row: 2 s
    assert supervisor._delay_s == 2 * WORKER_RESTART_FIRST_S
    clock.now += 2 * WORKER_RESTART_FIRST_S
    supervisor.check()
    clock.now += WORKER_STABLE_S  # this one ran for a minute before it died
    crash_and_notice(supervisor)
    assert supervisor._delay_s == WORKER_RESTART_FIRST_S
    state = read_worker_state(supervisor.state_path)
    assert state is not None
    assert state.down_since == clock.now  # a new outage


def test_a_worker_that_cannot_be_started_is_retried(tmp_path: Path) -> None:
    clock = Clock()
    supervisor = WorkerSupervisor(CRASHING, dict(os.environ), tmp_path / "s.json", clock=clock)
    supervisor.start()
    crash_and_notice(supervisor)
    supervisor.cmd = [str(tmp_path / "no-such-program")]
    clock.now += WORKER_RESTART_FIRST_S
    supervisor.check()  # the start fails: counted as another crash, not a dead supervisor
    state = read_worker_state(supervisor.state_path)
    assert state is not None
    assert state.state == RESTARTING
    assert state.last_exit.startswith("could not start: ")
    assert state.next_start_at == clock.now + 2 * WORKER_RESTART_FIRST_S


def test_exits_are_described_as_people_say_them() -> None:
    assert describe_exit(-signal.SIGKILL) == "killed by SIGKILL"
    assert describe_exit(1) == "exited with code 1"
    assert describe_exit(0) == "exited with code 0"

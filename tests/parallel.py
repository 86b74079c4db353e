"""The whole pytest suite as ``make test`` runs it: three pytest processes side by side.

* ``fast``: the in-process tests (``-m "not slow"``), mostly CPU;
* ``slow-first`` and ``slow-rest``: the subprocess tests (``-m slow``) in two halves by
  file (``--split``, tests/split.py), which mostly wait on real nodes, workers, PostgreSQL
  and Redis.

In one process the suite takes about 12 minutes on two cores; side by side it takes about
as long as its longest group. Each group has its own var directory (``GAME_VAR_DIR``) and
its own Redis database (``GAME_TEST_REDIS_URL``): nodes and workers of two groups must never
share a broker queue or a channel-layer group. Each group's output goes to
``var/pytest-<group>.log`` and is printed once every group is done; a line is printed as
each group ends and every minute while any still runs. Arguments are passed to every
group's pytest (``make test PYTEST_ARGS=-x``). Exit status: 0 when every group passed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

ROOT: Final = Path(__file__).resolve().parent.parent
VAR: Final = ROOT / "var"
REDIS_BASE: Final = os.environ.get("GAME_TEST_REDIS_BASE", "redis://127.0.0.1:6379")
# How often a line says which groups still run.
PROGRESS_EVERY_S: Final = 60.0
# How long interrupted groups get to stop their nodes before they are killed.
INTERRUPT_GRACE_S: Final = 20.0


@dataclass
class Group:
    name: str
    args: list[str]
    var_dir: str
    redis_db: int
    proc: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    ended: float | None = None
    log: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log = VAR / f"pytest-{self.name}.log"


GROUPS: Final = [
    Group("fast", ["-m", "not slow"], "var/test-fast", 13),
    Group("slow-first", ["-m", "slow", "--split", "first"], "var/test", 15),
    Group("slow-rest", ["-m", "slow", "--split", "rest"], "var/test-rest", 14),
]


def _clock(seconds: float) -> str:
    return f"{int(seconds) // 60}:{int(seconds) % 60:02d}"


def _summary(log: Path) -> str:
    """pytest's last line (``== 12 passed in 3.1s ==``)."""
    lines = [line for line in log.read_text(errors="replace").splitlines() if line.strip()]
    return lines[-1].strip("= ") if lines else "(no output)"


def start(group: Group, extra: list[str]) -> None:
    env = {
        **os.environ,
        "GAME_VAR_DIR": str(ROOT / group.var_dir),
        "GAME_TEST_REDIS_URL": f"{REDIS_BASE}/{group.redis_db}",
    }
    with group.log.open("wb") as log:
        group.proc = subprocess.Popen(
            [sys.executable, "-m", "pytest", *group.args, *extra],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its nodes and workers are stopped with it
        )
    group.started = time.monotonic()


def stop_all(groups: list[Group]) -> None:
    """Interrupt every group (pytest stops its nodes in its fixtures' teardown)."""
    running = [g for g in groups if g.proc is not None and g.proc.poll() is None]
    for group in running:
        assert group.proc is not None
        os.killpg(group.proc.pid, signal.SIGINT)
    deadline = time.monotonic() + INTERRUPT_GRACE_S
    for group in running:
        assert group.proc is not None
        try:
            group.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(group.proc.pid, signal.SIGKILL)
            group.proc.wait()


def _terminated(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # a CI timeout's SIGTERM stops the groups like Ctrl-C


def main(extra: list[str]) -> int:
    signal.signal(signal.SIGTERM, _terminated)
    VAR.mkdir(exist_ok=True)
    began = time.monotonic()
    for group in GROUPS:
        start(group, extra)
    names = ", ".join(f"{g.name} ({g.log.relative_to(ROOT)})" for g in GROUPS)
    print(f"pytest-all: running {names}", flush=True)
    next_progress = began + PROGRESS_EVERY_S
    try:
        while any(g.ended is None for g in GROUPS):
            time.sleep(0.5)
            now = time.monotonic()
            for group in GROUPS:
                if group.ended is None and group.proc is not None and group.proc.poll() is not None:
                    group.ended = now
                    print(
                        f"pytest-all: {group.name} ended after {_clock(now - group.started)} "
                        f"(exit {group.proc.returncode}): {_summary(group.log)}",
                        flush=True,
                    )
            if now >= next_progress and any(g.ended is None for g in GROUPS):
                waiting = ", ".join(g.name for g in GROUPS if g.ended is None)
                print(f"pytest-all: {_clock(now - began)} elapsed, running: {waiting}", flush=True)
                next_progress += PROGRESS_EVERY_S
    except KeyboardInterrupt:
        stop_all(GROUPS)
        print("pytest-all: interrupted", flush=True)
        return 130
    for group in GROUPS:
        print(f"\n--- pytest-all: {group.name} ({group.log.relative_to(ROOT)})", flush=True)
        sys.stdout.write(group.log.read_text(errors="replace"))
    codes = {g.name: g.proc.returncode if g.proc else None for g in GROUPS}
    print(
        f"\npytest-all: {_clock(time.monotonic() - began)} in all; exit codes "
        + ", ".join(f"{name} {code}" for name, code in codes.items()),
        flush=True,
    )
    return 0 if all(code == 0 for code in codes.values()) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""What the node's supervisor (``manage.py runnode``) knows about its Celery worker.

The supervisor writes this small JSON file on every change (atomically: a reader sees the
old or the new state, never half of one) and tells the web process where it is through
``GAME_SUPERVISOR_STATE_FILE``; ``/readyz`` reads it. A web server started some other way
(tests, a container running Daphne and the worker separately) has no such file and keeps
the plain worker check. Plain Python: the supervisor writes it before Django serves anything.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Final

__all__ = [
    "RESTARTING",
    "RUNNING",
    "STATE_FILE_ENV",
    "STOPPED",
    "WorkerState",
    "read_worker_state",
    "state_file_for",
    "write_worker_state",
]

# The environment variable through which the supervisor hands the file to its web process.
STATE_FILE_ENV: Final = "GAME_SUPERVISOR_STATE_FILE"
RUNNING: Final = "running"
RESTARTING: Final = "restarting"  # exited unexpectedly; a new one starts at next_start_at
STOPPED: Final = "stopped"  # the node is stopping
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


@dataclass(frozen=True)
class WorkerState:
    """The worker as the supervisor sees it. Times are wall-clock seconds (``time.time()``),
    comparable with the heartbeats the database records."""

    state: str
    pid: int | None = None
    restarts: int = 0
    started_at: float | None = None  # when the current process was started
    down_since: float | None = None  # first unexpected exit of the current run of crashes
    next_start_at: float | None = None  # restarting: when the next process starts
    last_exit: str = ""  # e.g. "killed by SIGKILL", "exited with code 1"
    supervisor_pid: int | None = None


def state_file_for(var_dir: Path, node_id: str) -> Path:
    """One file per node: two nodes started from one checkout must not share it."""
    return var_dir / f"supervisor-{_UNSAFE.sub('_', node_id)}.json"


def write_worker_state(path: Path, state: WorkerState) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(asdict(state)))
    os.replace(tmp, path)


def read_worker_state(path: Path) -> WorkerState | None:
    """The last state written, or None when there is none (not supervised, or unreadable)."""
    try:
        data = json.loads(path.read_text())
        return WorkerState(**data)
    except (OSError, ValueError, TypeError):
        return None

"""``--split first|rest``: two disjoint halves of the selected tests, by file, so that
``make test`` (``tests/parallel.py``) can run the subprocess tests in two processes.

Every test is in exactly one half: ``first`` is the files under ``FIRST`` minus those under
``NOT_FIRST``, ``rest`` is everything else, so a new test file always runs somewhere.
Whole files stay together (their module-scoped nodes are started once). The halves are
balanced on measured durations (``pytest -m slow --durations=0``, docs/DEVELOPMENT.md).
"""

from __future__ import annotations

from typing import Final

import pytest

SPLITS: Final = ("first", "rest")
# The console's and the play page's browser tests are in the first half, whose var
# directory is var/test (where README and DEVELOPMENT.md say their screenshots are).
FIRST: Final = ("tests/gamebackend/", "tests/console/")
NOT_FIRST: Final = (
    "tests/gamebackend/loadtest/", "tests/gamebackend/accounts/", "tests/gamebackend/flow/",
)  # fmt: skip


def in_first(nodeid: str) -> bool:
    path = nodeid.split("::", 1)[0]
    return path.startswith(FIRST) and not path.startswith(NOT_FIRST)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--split",
        choices=SPLITS,
        default=None,
        help="run only one of two disjoint halves of the selected tests (by file)",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    split = config.getoption("--split")
    if split is None:
        return
    want_first = split == "first"
    keep = [item for item in items if in_first(item.nodeid) == want_first]
    dropped = [item for item in items if in_first(item.nodeid) != want_first]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
    items[:] = keep

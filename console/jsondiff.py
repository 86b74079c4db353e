"""Side-by-side comparison of two JSON documents (the snapshot pages): one row per leaf,
named by its path (``x``, ``inventory[2].id``), with both sides' values.

Rows, not a text diff of pretty-printed JSON: a player's state is a few dozen fields, and
an operator comparing two versions wants to see which fields changed and to what.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Final

SAME: Final = "same"
CHANGED: Final = "changed"
ADDED: Final = "added"  # only on the right
REMOVED: Final = "removed"  # only on the left
ROOT: Final = "$"  # the path of a document that is itself a leaf
_PART = re.compile(r"\[(\d+)\]|([^.\[\]]+)")


@dataclass(frozen=True)
class DiffRow:
    path: str
    left: str | None  # compact JSON, None where the left side has no such leaf
    right: str | None
    change: str


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Leaf path -> leaf value; empty objects and lists are leaves themselves."""
    if isinstance(value, dict) and value:
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(flatten(item, f"{prefix}.{key}" if prefix else str(key)))
        return out
    if isinstance(value, list) and value:
        out = {}
        for index, item in enumerate(value):
            out.update(flatten(item, f"{prefix}[{index}]"))
        return out
    return {prefix or ROOT: value}


def _order(path: str) -> tuple[tuple[int, int, str], ...]:
    # List indices in numeric order (2 before 10), names alphabetically.
    return tuple(
        (0, int(index), "") if index else (1, 0, name) for index, name in _PART.findall(path)
    )


def _dump(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def json_diff(left: Any, right: Any) -> list[DiffRow]:
    """Every leaf of either document, in path order, with how it differs."""
    a, b = flatten(left), flatten(right)
    rows = []
    for path in sorted(a.keys() | b.keys(), key=_order):
        if path not in b:
            rows.append(DiffRow(path, _dump(a[path]), None, REMOVED))
        elif path not in a:
            rows.append(DiffRow(path, None, _dump(b[path]), ADDED))
        else:
            left_s, right_s = _dump(a[path]), _dump(b[path])
            rows.append(DiffRow(path, left_s, right_s, SAME if left_s == right_s else CHANGED))
    return rows

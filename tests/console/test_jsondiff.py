"""The snapshot pages' JSON comparison (pure logic)."""

from __future__ import annotations

from console.jsondiff import ADDED, CHANGED, REMOVED, SAME, DiffRow, flatten, json_diff


def test_flatten_names_every_leaf_by_its_path() -> None:
    doc = {"x": 1.5, "inv": [{"id": "a"}, {"id": "b"}], "tags": [], "meta": {}}
    assert flatten(doc) == {
        "x": 1.5, "inv[0].id": "a", "inv[1].id": "b", "tags": [], "meta": {},
    }  # fmt: skip
    assert flatten(7) == {"$": 7}


def test_rows_say_what_changed_was_added_or_removed() -> None:
    left = {"player_id": "p1", "x": 5.0, "gold": 10, "old": True}
    right = {"player_id": "p1", "x": 9.0, "gold": 10, "new": [1]}
    assert json_diff(left, right) == [
        DiffRow("gold", "10", "10", SAME),
        DiffRow("new[0]", None, "1", ADDED),
        DiffRow("old", "true", None, REMOVED),
        DiffRow("player_id", '"p1"', '"p1"', SAME),
        DiffRow("x", "5.0", "9.0", CHANGED),
    ]


def test_list_items_come_in_numeric_order() -> None:
    rows = json_diff({"a": list(range(12))}, {"a": list(range(12))})
    assert [r.path for r in rows][:3] == ["a[0]", "a[1]", "a[2]"]
    assert [r.path for r in rows][-2:] == ["a[10]", "a[11]"]
    assert {r.change for r in rows} == {SAME}


def test_a_type_change_is_a_change() -> None:
    assert json_diff({"x": 1}, {"x": "1"}) == [DiffRow("x", "1", '"1"', CHANGED)]
    assert json_diff({"x": {}}, {"x": {"y": 1}}) == [
        DiffRow("x", "{}", None, REMOVED),
        DiffRow("x.y", None, "1", ADDED),
    ]

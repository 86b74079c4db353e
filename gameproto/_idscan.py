"""The request `id` of a frame too deeply nested to decode (the error path only).

msgspec refuses pathological nesting with RecursionError, and then nothing of the frame
is decoded, not even a top-level `id` sitting next to the deep part. These scanners find
that `id` without recursion: they walk the frame once, keeping only the nesting depth,
and stop at the first top-level `id`. The walk is bounded by ``MAX_SCAN_STEPS`` tokens
(JSON: a string, or a run of brackets; msgpack: one value's header), so hostile input
costs at most about a millisecond; an `id` beyond that is not recovered.
"""

from __future__ import annotations

import re
import struct
from typing import Any, Final

import msgspec

__all__ = ["MAX_SCAN_STEPS", "NOT_FOUND", "json_top_level_id", "msgpack_top_level_id"]

MAX_SCAN_STEPS: Final = 4096
NOT_FOUND: Final = object()

# A JSON string, or a run of opening or of closing brackets (so `[[[[...` is one step).
_JSON_TOKEN: Final = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[{]+|[\]}]+')
# After a top-level key: the colon and a scalar value (number, string, true/false/null).
_JSON_SCALAR_VALUE: Final = re.compile(
    r'\s*:\s*(-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?|"[^"\\]*(?:\\.[^"\\]*)*"|true|false|null)'
)
_JSON_COLON: Final = re.compile(r"\s*:")


def json_top_level_id(text: str) -> Any:
    """The value of the first top-level `"id"` key if it is a scalar; else NOT_FOUND."""
    if not text.lstrip().startswith("{"):
        return NOT_FOUND
    depth = 0
    for steps, match in enumerate(_JSON_TOKEN.finditer(text)):
        if steps >= MAX_SCAN_STEPS:
            break
        token = match.group()
        first = token[0]
        if first == '"':
            if depth == 1 and token == '"id"' and _JSON_COLON.match(text, match.end()):
                value = _JSON_SCALAR_VALUE.match(text, match.end())
                if value is None:
                    return NOT_FOUND  # an object or array: not a usable id anyway
                try:
                    return msgspec.json.decode(value.group(1))
                except msgspec.DecodeError:
                    return NOT_FOUND
        elif first in "[{":
            depth += len(token)
        else:
            depth -= len(token)
            if depth <= 0:
                break  # the top-level object ended
    return NOT_FOUND


class _Unreadable(Exception):
    """The frame ended inside a value, has a byte msgpack never uses, or the step budget
    ran out."""


# msgpack type byte -> (fixed bytes after it, bytes of a length field, children per item).
# The length field gives the payload size (str/bin/ext) or the item count (array, map).
_FIXED: Final[dict[int, int]] = {
    0xC0: 0, 0xC2: 0, 0xC3: 0,  # nil, false, true
    0xCA: 4, 0xCB: 8,  # float32, float64
    0xCC: 1, 0xCD: 2, 0xCE: 4, 0xCF: 8,  # uint8..64
    0xD0: 1, 0xD1: 2, 0xD2: 4, 0xD3: 8,  # int8..64
    0xD4: 2, 0xD5: 3, 0xD6: 5, 0xD7: 9, 0xD8: 17,  # fixext 1..16 (type byte + data)
}  # fmt: skip
_SIZED: Final[dict[int, tuple[int, int]]] = {  # type -> (length field bytes, extra bytes)
    0xC4: (1, 0), 0xC5: (2, 0), 0xC6: (4, 0),  # bin 8/16/32
    0xC7: (1, 1), 0xC8: (2, 1), 0xC9: (4, 1),  # ext 8/16/32 (+ type byte)
    0xD9: (1, 0), 0xDA: (2, 0), 0xDB: (4, 0),  # str 8/16/32
}  # fmt: skip
_CONTAINERS: Final[dict[int, tuple[int, int]]] = {  # type -> (count field bytes, items/count)
    0xDC: (2, 1), 0xDD: (4, 1),  # array 16/32
    0xDE: (2, 2), 0xDF: (4, 2),  # map 16/32
}  # fmt: skip
_UINT: Final = {1: struct.Struct(">B"), 2: struct.Struct(">H"), 4: struct.Struct(">I")}
_ID_KEY: Final = msgspec.msgpack.encode("id")


def _uint(data: bytes, pos: int, size: int) -> int:
    if pos + size > len(data):
        raise _Unreadable
    return int(_UINT[size].unpack_from(data, pos)[0])


def _header(data: bytes, pos: int) -> tuple[int, int]:
    """(position after this value's own bytes, child items it contains)."""
    if pos >= len(data):
        raise _Unreadable
    kind = data[pos]
    if kind <= 0x7F or kind >= 0xE0:  # fixint
        return pos + 1, 0
    if kind <= 0x8F:  # fixmap
        return pos + 1, 2 * (kind & 0x0F)
    if kind <= 0x9F:  # fixarray
        return pos + 1, kind & 0x0F
    if kind <= 0xBF:  # fixstr
        return pos + 1 + (kind & 0x1F), 0
    if kind in _FIXED:
        return pos + 1 + _FIXED[kind], 0
    if kind in _SIZED:
        field, extra = _SIZED[kind]
        return pos + 1 + field + extra + _uint(data, pos + 1, field), 0
    if kind in _CONTAINERS:
        field, per_item = _CONTAINERS[kind]
        return pos + 1 + field, per_item * _uint(data, pos + 1, field)
    raise _Unreadable  # 0xC1: never used


class _Walker:
    __slots__ = ("data", "steps")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.steps = 0

    def skip(self, pos: int) -> int:
        """The position after the value at ``pos`` (iterative: one counter, no stack)."""
        pending = 1
        while pending:
            self.steps += 1
            if self.steps > MAX_SCAN_STEPS:
                raise _Unreadable
            pos, children = _header(self.data, pos)
            pending += children - 1
        if pos > len(self.data):
            raise _Unreadable
        return pos


def msgpack_top_level_id(data: bytes) -> Any:
    """The value of the first top-level `"id"` key if it is a scalar; else NOT_FOUND."""
    if not data:
        return NOT_FOUND
    kind = data[0]
    if 0x80 <= kind <= 0x8F:
        pos, pairs = 1, kind & 0x0F
    elif kind in (0xDE, 0xDF):
        field = 2 if kind == 0xDE else 4
        try:
            pos, pairs = 1 + field, _uint(data, 1, field)
        except _Unreadable:
            return NOT_FOUND
    else:
        return NOT_FOUND
    walker = _Walker(data)
    try:
        for _ in range(pairs):
            key_end = walker.skip(pos)
            if data[pos:key_end] == _ID_KEY:
                if _header(data, key_end)[1]:
                    return NOT_FOUND  # a container: not a usable id anyway
                return msgspec.msgpack.decode(data[key_end : walker.skip(key_end)])
            pos = walker.skip(key_end)
    except (_Unreadable, msgspec.DecodeError):
        pass
    return NOT_FOUND

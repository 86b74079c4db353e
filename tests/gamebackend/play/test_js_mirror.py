"""The JavaScript SDK mirrors the wire contract of `gameproto` (its `proto.js`): the same
message types with the same fields (required and optional), the same room options, codes
and limits. A schema change in Python fails here until the SDK follows it."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import msgspec
import pytest

import gameproto as p
from gameproto import rooms
from gameproto.codes import ERROR_CODES, INT64_MAX, MAX_ID_LENGTH, CloseCode
from gameproto.messages import ClientMessage, client_types, message_tag, server_types
from tests.services import require_node

PRINT_CONTRACT = Path(__file__).resolve().parent / "js" / "print_contract.mjs"
NODE_TIMEOUT_S = 60


@pytest.fixture(scope="module")
def mirrored() -> dict[str, Any]:
    node = require_node()
    done = subprocess.run(
        [node, str(PRINT_CONTRACT)],
        capture_output=True,
        text=True,
        check=True,
        timeout=NODE_TIMEOUT_S,
    )
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def fields(cls: type[msgspec.Struct], *, skip: tuple[str, ...] = ()) -> dict[str, list[str]]:
    info = [f for f in msgspec.structs.fields(cls) if f.name not in skip]
    return {
        "required": sorted(f.name for f in info if f.required),
        "optional": sorted(f.name for f in info if not f.required),
    }


def as_sorted(spec: dict[str, list[str]]) -> dict[str, list[str]]:
    return {key: sorted(names) for key, names in spec.items()}


def test_every_client_message_and_its_fields(mirrored: dict[str, Any]) -> None:
    base = tuple(f.name for f in msgspec.structs.fields(ClientMessage))
    assert sorted(mirrored["clientBase"]) == sorted(base)
    python = {message_tag(cls): fields(cls, skip=base) for cls in client_types()}
    javascript = {tag: as_sorted(spec) for tag, spec in mirrored["client"].items()}
    assert javascript == python


def test_every_server_message_and_its_fields(mirrored: dict[str, Any]) -> None:
    python = {message_tag(cls): fields(cls) for cls in server_types()}
    javascript = {tag: as_sorted(spec) for tag, spec in mirrored["server"].items()}
    assert javascript == python


def test_room_options_codes_and_limits(mirrored: dict[str, Any]) -> None:
    assert mirrored["roomCreate"] == [f.name for f in msgspec.structs.fields(p.RoomCreate)]
    assert mirrored["closeCodes"] == {code.name: int(code) for code in CloseCode}
    assert sorted(mirrored["errorCodes"]) == sorted(ERROR_CODES)
    assert tuple(mirrored["latePolicies"]) == rooms.LATE_POLICIES
    assert mirrored["roomIdPattern"] == rooms.ROOM_ID_PATTERN
    assert int(mirrored["digestMax"]) == rooms.DIGEST_MAX
    assert int(mirrored["int64Max"]) == INT64_MAX
    expected = {
        "JSON_SUBPROTOCOL": p.JSON_CODEC.name,
        "MAX_ID_LENGTH": MAX_ID_LENGTH,
        "MAX_TICK_RATE": rooms.MAX_TICK_RATE,
        "DEFAULT_TICK_RATE": rooms.DEFAULT_TICK_RATE,
        "MAX_PLAYERS_LIMIT": rooms.MAX_PLAYERS_LIMIT,
        "DEFAULT_MAX_PLAYERS": rooms.DEFAULT_MAX_PLAYERS,
        "MAX_INPUT_DELAY": rooms.MAX_INPUT_DELAY,
        "DEFAULT_INPUT_DELAY": rooms.DEFAULT_INPUT_DELAY,
        "ROOM_HISTORY": rooms.ROOM_HISTORY,
        "MAX_INPUT_AHEAD": rooms.MAX_INPUT_AHEAD,
        "KEYS_MAX": rooms.KEYS_MAX,
        "MAX_CHAT_CHARS": rooms.MAX_CHAT_CHARS,
        "MAX_SIM_NAME": rooms.MAX_SIM_NAME,
    }
    assert mirrored["constants"] == expected

"""A stand-in for a bot's socket in pure-logic tests of the load bots."""

from __future__ import annotations

import json
from typing import Any


class Transport:
    """Records the frames a bot writes (unmasked payloads, decoded)."""

    def __init__(self) -> None:
        self.frames: list[dict[str, Any]] = []

    def write(self, data: bytes) -> None:
        length = data[1] & 0x7F
        head = 2 + (2 if length == 126 else 8 if length == 127 else 0)
        mask, payload = data[head : head + 4], data[head + 4 :]
        self.frames.append(json.loads(bytes(b ^ mask[i % 4] for i, b in enumerate(payload))))

    def get_extra_info(self, name: str) -> Any:
        return None  # no socket behind it

"""Server-push baseline for bench/gateway_bench.py (``--push``): the rooms' pattern.

A bare ASGI app (no game code): every WebSocket connection is accepted and joins one
"room"; a ticker sends every member ``PUSH_PER_TICK`` small state messages per tick
(``PUSH_TICK_HZ`` ticks per second), as a room's simulation would. What limits the
delivered messages per second is the server's outbound path, measured for each server
with the node's own setup (``GAME_SERVER``):

    PORT=18300 PUSH_PER_TICK=2 .venv/bin/python bench/push_asgi.py     # ws://127.0.0.1:18300/
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

PUSH_TICK_HZ = 20.0
Send = Callable[[dict[str, Any]], Awaitable[None]]


class Room:
    def __init__(self, per_tick: int) -> None:
        self.members: set[Send] = set()
        self.per_tick = per_tick
        self.task: asyncio.Task[None] | None = None

    async def tick_forever(self) -> None:
        loop = asyncio.get_running_loop()
        start, n, seq = loop.time(), 0, 0
        while True:
            n += 1
            await asyncio.sleep(max(0.0, start + n / PUSH_TICK_HZ - loop.time()))
            for send in list(self.members):
                for _ in range(self.per_tick):
                    seq += 1
                    text = json.dumps({"type": "state", "n": seq, "x": 1.0, "y": 2.0})
                    with contextlib.suppress(Exception):  # a member that just left
                        await send({"type": "websocket.send", "text": text})


def build_application(per_tick: int) -> Any:
    room = Room(per_tick)

    async def app(scope: dict[str, Any], receive: Any, send: Send) -> None:
        if scope["type"] != "websocket":
            return
        while True:
            message = await receive()
            if message["type"] == "websocket.connect":
                await send({"type": "websocket.accept"})
                room.members.add(send)
                if room.task is None:
                    room.task = asyncio.get_running_loop().create_task(
                        room.tick_forever()
                    )  # owned by room
            elif message["type"] == "websocket.disconnect":
                room.members.discard(send)
                return

    return app


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gamebackend.settings")
    import django

    from gamebackend.conf import server_choice

    app = build_application(int(os.environ.get("PUSH_PER_TICK", "1")))
    if server_choice() == "daphne":
        from daphne.server import Server  # noqa: F401  (installs the asyncio reactor)

        django.setup()
        from gamebackend.server.daphne_server import build_server as daphne_build

        daphne_build(app).run()
    else:
        django.setup()
        from gamebackend.server.uvicorn_server import build_server

        build_server(app).run()


if __name__ == "__main__":
    main()

"""Baseline app for bench/gateway_bench.py: the stock Channels echo consumer.

``AsyncWebsocketConsumer`` with its default ``dispatch`` (and the project's default channel
layer), echoing every frame, served by the same server setup as the gateway (the node's
``build_server`` of ``GAME_SERVER``: same protocol options, same settings):

    PORT=18300 .venv/bin/python bench/echo_asgi.py      # ws://127.0.0.1:18300/ws/echo/
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

ECHO_PATH = "ws/echo/"


def build_application() -> Any:
    from channels.generic.websocket import AsyncWebsocketConsumer
    from channels.routing import ProtocolTypeRouter, URLRouter
    from django.urls import path

    class EchoConsumer(AsyncWebsocketConsumer):
        async def receive(
            self, text_data: str | None = None, bytes_data: bytes | None = None
        ) -> None:
            if text_data is not None:
                await self.send(text_data=text_data)
            else:
                await self.send(bytes_data=bytes_data)

    return ProtocolTypeRouter({"websocket": URLRouter([path(ECHO_PATH, EchoConsumer.as_asgi())])})


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gamebackend.settings")
    import django

    from gamebackend.conf import server_choice

    if server_choice() == "daphne":
        # As in gamebackend.server: Daphne installs Twisted's asyncio reactor first.
        from daphne.server import Server  # noqa: F401

        django.setup()
        from gamebackend.server.daphne_server import build_server as daphne_build

        daphne_build(build_application()).run()
    else:
        django.setup()
        from gamebackend.server.uvicorn_server import build_server

        build_server(build_application()).run()


if __name__ == "__main__":
    main()

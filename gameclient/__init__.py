"""Asyncio client SDK for the game WebSocket gateway (`/ws/game/`).

Django-free: it shares only the wire contract (`gameproto`) with the server.

    async def tickets() -> str: ...
    async with GameClient("ws://127.0.0.1:8000/ws/game/", tickets) as client:
        state = await client.request(Move(x=1, y=2))
        async for push in client:
            ...
"""

from gameproto import Move, Ping, StateReq

from ._backoff import Backoff
from ._client import GameClient, Pushed
from ._errors import ClientClosed, ConnectRefused, GameError, SessionLost
from ._stream import UnknownMessage

__all__ = [
    "Backoff",
    "ClientClosed",
    "ConnectRefused",
    "GameClient",
    "GameError",
    "Move",
    "Ping",
    "Pushed",
    "SessionLost",
    "StateReq",
    "UnknownMessage",
]

"""Asyncio client SDK for the game WebSocket gateway (`/ws/game/`).

Django-free: it shares only the wire contract (`gameproto`) with the server.

    tickets = TicketSource.device("http://127.0.0.1:8000", device_id=my_device_id)
    async with GameClient("ws://127.0.0.1:8000/ws/game/", tickets) as client:
        state = await client.request(Move(x=1, y=2))
        async for push in client:
            ...
"""

from gameproto import Move, Ping, StateReq

from ._auth import Login, TicketSource
from ._backoff import Backoff
from ._client import GameClient, Pushed
from ._errors import AuthError, ClientClosed, GameError, SessionLost
from ._stream import UnknownMessage

__all__ = [
    "AuthError",
    "Backoff",
    "ClientClosed",
    "GameClient",
    "GameError",
    "Login",
    "Move",
    "Ping",
    "Pushed",
    "SessionLost",
    "StateReq",
    "TicketSource",
    "UnknownMessage",
]

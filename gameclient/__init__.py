"""Asyncio client SDK for the game WebSocket gateway (`/ws/game/`).

Django-free: it shares only the wire contract (`gameproto`) with the server.

    tickets = TicketSource.device("http://127.0.0.1:8000", device_id=my_device_id)
    async with GameClient("ws://127.0.0.1:8000/ws/game/", tickets) as client:
        state = await client.request(Move(x=1, y=2))
        async for push in client:
            ...

Rooms (docs/ROOMS.md): `Room(client, "arena", sim=DEMO)` joins, sends inputs, applies
frames, predicts and rolls back, reports digests; `interpolate` and `lerp_angle` help draw.
"""

from gameproto import Move, Ping, RoomCreate, StateReq
from gameproto.sims import DEMO

from ._auth import Login, TicketSource
from ._backoff import Backoff
from ._client import GameClient, Pushed
from ._errors import AuthError, ClientClosed, ConnectRefused, GameError, SessionLost
from ._lockstep import InputBuffer, Lockstep, View, interpolate, lerp_angle, lerp_wrapped
from ._room import Room
from ._stream import UnknownMessage

__all__ = [
    "DEMO",
    "AuthError",
    "Backoff",
    "ClientClosed",
    "ConnectRefused",
    "GameClient",
    "GameError",
    "InputBuffer",
    "Lockstep",
    "Login",
    "Move",
    "Ping",
    "Pushed",
    "Room",
    "RoomCreate",
    "SessionLost",
    "StateReq",
    "TicketSource",
    "UnknownMessage",
    "View",
    "interpolate",
    "lerp_angle",
    "lerp_wrapped",
]

"""The node's ASGI server: ``python -m gamebackend.server``.

``GAME_SERVER`` picks it: ``uvicorn`` (the default: uvicorn with websockets' sans-I/O
protocol, uvloop and httptools, about twice Daphne's messages per core, see
docs/BENCHMARKS.md) or ``daphne``. Both serve ``gamebackend.asgi:application`` with the
node's settings and drain gracefully on SIGTERM: the gateway stops accepting, closes
every socket with 1001 and awaits every actor's ``on_stop``, then the process exits
(within 10 s). Channels' ``manage.py runserver`` (development) runs Daphne.

Server-specific code lives in ``uvicorn_server`` and ``daphne_server``; ``guard`` (per-IP
connection cap, handshake deadline) and ``lifecycle`` (graceful drain) are shared.
"""

from __future__ import annotations

import os


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gamebackend.settings")
    # Chosen before Django is set up: Daphne must install its reactor first.
    from gamebackend.conf import server_choice

    if server_choice() == "daphne":
        from gamebackend.server import daphne_server

        daphne_server.main()
    else:
        import django

        django.setup()  # before the server module, which imports the gateway
        from gamebackend.server import uvicorn_server

        uvicorn_server.main()

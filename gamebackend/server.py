"""Run Daphne for this node with the project's settings (``python -m gamebackend.server``).

Daphne is driven from here rather than from its CLI so the node's settings (bind address,
message-size limit, keepalive policy) have one source.
"""

from __future__ import annotations

import logging
import os
import sys

# Daphne's own keepalive ping sweeps every connection every few seconds; the game's
# application-level heartbeat replaces it, so push it out of the way.
DAPHNE_PING_INTERVAL_S = 24 * 3600
DAPHNE_PING_TIMEOUT_S = 24 * 3600
# Time an upgrade may take before Daphne drops the socket.
WEBSOCKET_CONNECT_TIMEOUT_S = 10
# Grace for application instances to finish after their socket closed.
APPLICATION_CLOSE_TIMEOUT_S = 10
# Players stay connected for as long as they play: no forced reconnect.
WEBSOCKET_NO_TIMEOUT = -1


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gamebackend.settings")
    import django

    django.setup()
    from daphne.endpoints import build_endpoint_description_strings
    from daphne.server import Server
    from django.conf import settings

    from gamebackend.asgi import application

    logging.getLogger(__name__).info(
        "node %s (%s profile) listening on %s",
        settings.GAME_NODE_ID,
        settings.GAME_PROFILE,
        settings.GAME_BIND,
    )
    server = Server(
        application=application,
        endpoints=build_endpoint_description_strings(
            host=settings.GAME_BIND.host, port=settings.GAME_BIND.port
        ),
        websocket_timeout=WEBSOCKET_NO_TIMEOUT,
        websocket_connect_timeout=WEBSOCKET_CONNECT_TIMEOUT_S,
        ping_interval=DAPHNE_PING_INTERVAL_S,
        ping_timeout=DAPHNE_PING_TIMEOUT_S,
        websocket_max_message_size=settings.GAME_MAX_MESSAGE_BYTES,
        websocket_max_frame_size=settings.GAME_MAX_MESSAGE_BYTES,
        application_close_timeout=APPLICATION_CLOSE_TIMEOUT_S,
        verbosity=1,
    )
    server.run()
    sys.exit(0)


if __name__ == "__main__":
    main()

"""Stock ASGI servers for bench/gateway_bench.py's comparison (not the node's own setup).

Serves ``gamebackend.asgi:application`` on ``127.0.0.1:$PORT`` with a server the node does
not ship, so the benchmark can compare it on the same app and load:

    PORT=18300 .venv/bin/python bench/serve_asgi.py uvicorn-wsproto   # uvicorn, wsproto, uvloop
    PORT=18300 .venv/bin/python bench/serve_asgi.py granian           # granian, 1 worker, uvloop

Bench-only dependencies: ``pip install -r requirements-bench.txt``. These servers have no
graceful drain of the gateway (the node's servers are in gamebackend/server/).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

HOST = "127.0.0.1"


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gamebackend.settings")
    kind, port = sys.argv[1], os.environ["PORT"]
    if kind == "granian":
        # One worker process, one runtime thread: one core's worth, like the others.
        argv = [
            sys.executable, "-m", "granian", "--interface", "asginl", "--ws",
            "--host", HOST, "--port", port, "--workers", "1", "--runtime-threads", "1",
            "--loop", "uvloop", "gamebackend.asgi:application",
        ]  # fmt: skip
        os.execv(sys.executable, argv)
    if kind != "uvicorn-wsproto":
        raise SystemExit(f"unknown server {kind!r}")
    import django

    django.setup()
    import uvicorn
    from django.conf import settings

    from gamebackend.asgi import application

    config = uvicorn.Config(
        application, host=HOST, port=int(port), loop="uvloop", http="httptools", ws="wsproto",
        ws_max_size=settings.GAME_MAX_MESSAGE_BYTES, ws_ping_interval=None,
        ws_per_message_deflate=False, lifespan="off", interface="asgi3", log_config=None,
        access_log=settings.GAME_ACCESS_LOG, proxy_headers=False,
    )  # fmt: skip
    uvicorn.Server(config).run()


if __name__ == "__main__":
    main()

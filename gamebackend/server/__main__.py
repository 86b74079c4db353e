"""``python -m gamebackend.server``: run this node's ASGI server (see the package doc)."""

from gamebackend.server import main

main()

"""``manage.py loadbots``: drive a node with many bot players (see gamebackend.loadtest).

Run on the node itself (its checkout and environment) against one of its own addresses,
the bots mint their tickets with the node's own ``GAME_JWT_SECRET`` (from the environment,
or the single-machine profile's generated ``var/secrets.json``), so the guest API's per-IP
limit does not decide how many players a test gets. Against any other host the secret of
this checkout would be the wrong one: the bots then use ``--jwt-secret``,
``$GAME_JWT_SECRET`` or the guest API.
"""

from __future__ import annotations

import ipaddress
import os
from typing import IO, Any, cast
from urllib.parse import urlsplit

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from gamebackend.loadtest import cli


def targets_this_node(url: str) -> bool:
    """The URL names this machine: a loopback address, ``localhost`` or the bind host."""
    host = (urlsplit(url).hostname or "").lower()
    if host in {"localhost", settings.GAME_BIND.host.lower()}:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Command(BaseCommand):
    help = (
        "Open N bot players against a gateway, each sending R move requests/s; "
        "print connections, failures, messages/s and request latency."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        cli.add_arguments(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        if (
            not options["jwt_secret"]
            and not os.environ.get("GAME_JWT_SECRET")
            and targets_this_node(options["url"])
        ):
            options["jwt_secret"] = settings.GAME_JWT_SECRET
            options["ticket_source"] = "minted with this node's own secret (GAME_JWT_SECRET)"
        # Never longer than this node accepts (GAME_TICKET_TTL_S).
        options["ticket_ttl_s"] = min(cli.TICKET_TTL_S, settings.GAME_TICKET_TTL_S)
        # The raw stream: Django's wrapper would end every write with a newline, which
        # breaks the \r-updated progress line.
        try:
            status = cli.run_cli(options, cast(IO[str], self.stdout._out))
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        if status != cli.EXIT_OK:
            raise CommandError("every connection failed", returncode=status)

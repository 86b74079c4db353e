"""``manage.py loadbots``: drive a node with many bot players (see gamebackend.loadtest)."""

from __future__ import annotations

from typing import IO, Any, cast

from django.core.management.base import BaseCommand, CommandError, CommandParser

from gamebackend.loadtest import cli


class Command(BaseCommand):
    help = (
        "Open N bot players against a gateway, each sending R move requests/s; "
        "print connections, failures, messages/s and request latency."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        cli.add_arguments(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        # The raw stream: Django's wrapper would end every write with a newline, which
        # breaks the \r-updated progress line.
        try:
            status = cli.run_cli(options, cast(IO[str], self.stdout._out))
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        if status != cli.EXIT_OK:
            raise CommandError("every connection failed", returncode=status)

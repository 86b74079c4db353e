"""Show or set flow-control rules from the command line (audited like console edits)."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from gamebackend.flow import bucket
from gamebackend.flow.bucket import show_number
from gamebackend.flow.models import RateLimitRule
from gamebackend.flow.services import flow_rule_save


class Command(BaseCommand):
    help = "List rate-limit rules, or create/update one: flowrule RESOURCE --scope S --rate R ..."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("resource", nargs="?", help="e.g. ws.move; omit to list the rules")
        parser.add_argument("--scope", default="player", help="player, ip, node or cluster")
        parser.add_argument(
            "--rate",
            type=float,
            help=f"tokens per second ({show_number(bucket.MIN_RATE)} to "
            f"{show_number(bucket.MAX_RATE)})",
        )
        parser.add_argument(
            "--burst", type=float, help=f"bucket capacity (1 to {show_number(bucket.MAX_BURST)})"
        )
        parser.add_argument("--behavior", help="reject, queue or warm_up")
        parser.add_argument(
            "--max-queueing-ms",
            type=float,
            help=f"queue: longest delay (up to {show_number(bucket.MAX_QUEUEING_MS)} ms)",
        )
        parser.add_argument(
            "--warm-up-s",
            type=float,
            help=f"warm_up: ramp length (up to {show_number(bucket.MAX_WARM_UP_S)} s)",
        )
        parser.add_argument("--disable", action="store_true")
        parser.add_argument("--enable", action="store_true")

    def handle(self, *args: Any, **opts: Any) -> None:
        if not opts["resource"]:
            for rule in RateLimitRule.objects.all():
                self.stdout.write(
                    f"{rule.resource:20} {rule.scope:8} rate={rule.rate:g}/s burst={rule.burst:g} "
                    f"{rule.behavior} {'on' if rule.enabled else 'off'} v{rule.version}"
                )
            return
        found = RateLimitRule.objects.filter(resource=opts["resource"], scope=opts["scope"]).first()
        if found is not None:
            rule = found
        else:
            if opts["rate"] is None or opts["burst"] is None:
                raise CommandError("a new rule needs --rate and --burst")
            rule = RateLimitRule(resource=opts["resource"], scope=opts["scope"])
        for field in ("rate", "burst", "behavior", "max_queueing_ms", "warm_up_s"):
            if opts[field] is not None:
                setattr(rule, field, opts[field])
        if opts["disable"] or opts["enable"]:
            rule.enabled = bool(opts["enable"])
        try:
            flow_rule_save(rule=rule, user=None)
        except ValidationError as exc:
            raise CommandError(f"refused: {'; '.join(exc.messages)}") from None
        self.stdout.write(f"{rule.resource} per {rule.scope}: saved as v{rule.version}")

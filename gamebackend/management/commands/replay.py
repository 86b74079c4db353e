"""``python manage.py replay ROOM [--verify]``: print a battle's frames from its replay log."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from gamebackend.rooms.replay import Verification, battle_header, replay_lines, verify_frames
from gamebackend.rooms.selectors import battle_frames, battle_get, battle_latest


class Command(BaseCommand):
    help = (
        "Print a room's battle from its replay log (the latest battle unless --battle). "
        "With --verify, re-run the battle's simulation and print the digest every 100 ticks."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("room", help="room id")
        parser.add_argument("--battle", help="battle id (default: the room's latest battle)")
        parser.add_argument(
            "--verify", action="store_true", help="re-run the simulation, print digests"
        )
        parser.add_argument(
            "--jsonl", action="store_true", help="print the JSON lines download format"
        )
        parser.add_argument("--quiet", action="store_true", help="no frames, only the summary")

    def handle(self, *args: Any, **options: Any) -> None:
        room = options["room"]
        if options["battle"]:
            battle = battle_get(battle_id=options["battle"])
            if battle is not None and battle.room_id != room:
                battle = None
        else:
            battle = battle_latest(room_id=room)
        if battle is None:
            raise CommandError(f"no battle of room {room!r} in the replay log")
        out = self.stdout
        if options["jsonl"]:
            for line in replay_lines(battle):
                out.write(line, ending="")
        else:
            header = battle_header(battle)
            out.write(
                f"battle {header['battle']} of room {header['room']}: {header['tick_rate']} Hz, "
                f"max {header['max_players']} players, input delay {header['input_delay']}, "
                f"late policy {header['late_policy']}, sim {header['sim'] or '-'}; "
                f"ticks 0..{header['last_tick']}; started {header['started_at']}, "
                f"{'ended ' + header['ended_at'] if header['ended_at'] else 'not ended'}"
            )
            if not options["quiet"]:
                for tick, inputs in battle_frames(battle=battle):
                    if inputs:
                        out.write(f"{tick} {json.dumps(inputs, separators=(',', ':'))}")
        if options["verify"]:
            self._verify(battle.sim, battle)

    def _verify(self, sim: str, battle: Any) -> None:
        if not sim:
            raise CommandError("this battle has no simulation to verify")
        summary: Verification | None = None
        for item in verify_frames(sim, battle_frames(battle=battle)):
            if isinstance(item, Verification):
                summary = item
            else:
                tick, digest = item
                self.stdout.write(f"verify: tick {tick} digest {digest}")
        assert summary is not None
        self.stdout.write(
            f"verify: {summary.ticks} ticks re-simulated; tick {summary.final_tick} "
            f"digest {summary.final_digest}"
        )
        if summary.gaps:
            gaps = ", ".join(f"{a}..{b}" for a, b in summary.gaps)
            raise CommandError(f"the replay log has gaps (ticks {gaps}); simulated as empty")
        self.stdout.write(self.style.SUCCESS("verify: the replay log is complete"))

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from django.db import transaction
from django.db.models import Value
from django.db.models.functions import Greatest
from django.utils import timezone

from gamebackend.rooms.models import Battle, ReplayChunk


def replay_chunks_save(*, chunks: Iterable[Mapping[str, Any]]) -> int:
    """Store flushed replay chunks (see ``RoomActor._flush`` for the shape). Idempotent:
    a chunk already stored (same battle and first tick) is not stored twice.

    Returns the number of chunks written.
    """
    chunks = list(chunks)
    if not chunks:
        return 0
    now = timezone.now()
    written = 0
    with transaction.atomic():
        battles: dict[str, Battle] = {}
        for chunk in chunks:
            battle_id = str(chunk["battle"])
            if battle_id in battles:
                continue
            config = chunk["config"]
            battle, _ = Battle.objects.get_or_create(
                battle_id=battle_id,
                defaults={
                    "room_id": str(config["room"]),
                    "tick_rate": int(config["tick_rate"]),
                    "max_players": int(config["max_players"]),
                    "input_delay": int(config["input_delay"]),
                    "late_policy": str(config["late_policy"]),
                    "sim": str(config.get("sim") or ""),
                },
            )
            battles[battle_id] = battle
        rows = [
            ReplayChunk(
                battle=battles[str(chunk["battle"])],
                first_tick=int(chunk["first_tick"]),
                last_tick=int(chunk["last_tick"]),
                frames=list(chunk["frames"]),
            )
            for chunk in chunks
            if int(chunk["last_tick"]) >= int(chunk["first_tick"])
        ]
        existing = set(
            ReplayChunk.objects.filter(
                battle__in=list(battles.values()), first_tick__in=[r.first_tick for r in rows]
            ).values_list("battle_id", "first_tick")
        )
        fresh = [r for r in rows if (r.battle.pk, r.first_tick) not in existing]
        ReplayChunk.objects.bulk_create(fresh, ignore_conflicts=True)
        written = len(fresh)
        for battle_id, battle in battles.items():
            mine = [c for c in chunks if str(c["battle"]) == battle_id]
            last = max(int(c["last_tick"]) for c in mine)
            ended = any(bool(c.get("ended")) for c in mine)
            Battle.objects.filter(pk=battle.pk).update(
                last_tick=Greatest("last_tick", Value(last)),
                updated_at=now,
                **({"ended_at": now} if ended else {}),
            )
    return written

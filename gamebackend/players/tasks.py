from __future__ import annotations

from typing import Any

from celery import shared_task

from gamebackend.players.services import player_states_save

SAVE_STATES_TASK_NAME = "gamebackend.players.save_states"


@shared_task(
    name=SAVE_STATES_TASK_NAME,
    autoretry_for=(Exception,),
    retry_backoff=True,
    retry_backoff_max=60,
    max_retries=10,
)
def save_states(states: list[dict[str, Any]]) -> int:
    """Persist a batch of player states (JSON dicts); stale revisions lose. Idempotent."""
    return player_states_save(states=states)

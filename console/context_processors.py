from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest


def node(request: HttpRequest) -> dict[str, str]:
    """Which node and profile a console page came from (several nodes share one database)."""
    return {"game_node_id": settings.GAME_NODE_ID, "game_profile": settings.GAME_PROFILE}

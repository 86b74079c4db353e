"""How code outside the node's event loop reaches a player's live actor (a port).

The console, the ``snapshot`` command and Celery tasks run in threads or other processes;
the gateway knows where players are online (its hub, the cluster's player directory) and
registers an implementation at start (``gateway/live.py``). Without one (a process with
no gateway), every player counts as offline to this process: ``None`` answers.
"""

from __future__ import annotations

from typing import Protocol

from gamebackend.players.state import PlayerRecord

__all__ = ["LivePlayers", "live_players", "register_live_players"]


class LivePlayers(Protocol):
    def where(self, player_id: str) -> str | None:
        """The node whose actor holds the player, or None when offline (blocking)."""
        ...

    def current(self, player_id: str) -> PlayerRecord | None:
        """The live actor's current version (O(1) on its side), or None when offline."""
        ...

    def restore(self, record: PlayerRecord, *, floor: int) -> PlayerRecord | None:
        """Put ``record``'s state into the live actor through its mailbox; the version
        it now holds, or None when the player is not online (blocking)."""
        ...


class _Offline:
    def where(self, player_id: str) -> str | None:
        return None

    def current(self, player_id: str) -> PlayerRecord | None:
        return None

    def restore(self, record: PlayerRecord, *, floor: int) -> PlayerRecord | None:
        return None


_live: LivePlayers = _Offline()


def register_live_players(live: LivePlayers) -> None:
    global _live
    _live = live


def live_players() -> LivePlayers:
    return _live

"""The console's player page: online players are read-only (their live state would win)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from gamebackend.players.live import register_live_players
from gamebackend.players.models import Player
from gamebackend.players.state import PlayerRecord

pytestmark = pytest.mark.django_db
PASSWORD = "long-Enough-pass-4711"


class Online:
    def __init__(self, *players: str) -> None:
        self.players = set(players)

    def where(self, player_id: str) -> str | None:
        return "node-a" if player_id in self.players else None

    def current(self, player_id: str) -> PlayerRecord | None:
        return None

    def restore(self, record: PlayerRecord, *, floor: int) -> PlayerRecord | None:
        return None


@pytest.fixture
def admin_client() -> Iterator[Client]:
    from gamebackend.gateway.live import GatewayLivePlayers

    user = get_user_model().objects.create_superuser("root", password=PASSWORD)
    client = Client()
    client.force_login(user)
    yield client
    register_live_players(GatewayLivePlayers())


def form(player: Player, **changes: Any) -> dict[str, Any]:
    return {"player_id": player.player_id, "name": player.name, "x": player.x, "y": player.y,
            **changes}  # fmt: skip


def test_an_online_player_is_read_only_with_a_message(admin_client: Client) -> None:
    player = Player.objects.create(player_id="live1", x=5, lsn=4)
    register_live_players(Online("live1"))
    url = f"/console/players/player/{player.pk}/change/"
    page = admin_client.get(url, follow=True).content.decode()
    assert "is online (node node-a)" in page
    assert "snapshot restore" in page
    admin_client.post(url, form(player, x=999))
    assert Player.objects.get(pk=player.pk).x == 5.0


def test_an_offline_edit_is_saved_above_the_stored_lsn(admin_client: Client) -> None:
    player = Player.objects.create(player_id="off1", x=5, lsn=4)
    register_live_players(Online())
    url = f"/console/players/player/{player.pk}/change/"
    response = admin_client.post(url, form(player, x=999))
    assert response.status_code == 302
    row = Player.objects.get(pk=player.pk)
    assert (row.x, row.lsn) == (999.0, 5)

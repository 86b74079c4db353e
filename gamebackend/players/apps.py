from django.apps import AppConfig


class PlayersConfig(AppConfig):
    name = "gamebackend.players"
    label = "players"
    verbose_name = "Players"

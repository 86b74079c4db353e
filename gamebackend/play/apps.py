from django.apps import AppConfig


class PlayConfig(AppConfig):
    name = "gamebackend.play"
    label = "play"
    verbose_name = "Browser play page and JavaScript SDK"

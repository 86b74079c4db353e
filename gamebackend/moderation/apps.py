from django.apps import AppConfig


class ModerationConfig(AppConfig):
    name = "gamebackend.moderation"
    label = "moderation"
    verbose_name = "Moderation"

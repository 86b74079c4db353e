from django.apps import AppConfig


class HealthConfig(AppConfig):
    name = "gamebackend.health"
    label = "health"
    verbose_name = "Node health"

from django.apps import AppConfig


class GatewayConfig(AppConfig):
    name = "gamebackend.gateway"
    label = "gateway"
    verbose_name = "WebSocket gateway"

from django.apps import AppConfig


class GatewayConfig(AppConfig):
    name = "gamebackend.gateway"
    label = "gateway"
    verbose_name = "WebSocket gateway"

    def ready(self) -> None:
        # Console, commands and tasks reach online players through the gateway.
        from gamebackend.gateway.live import install

        install()

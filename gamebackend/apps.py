from django.apps import AppConfig


class GamebackendConfig(AppConfig):
    name = "gamebackend"
    verbose_name = "Game backend"

    def ready(self) -> None:
        # Bind @shared_task to the project's Celery app (broker and serializer settings)
        # in every process that sends tasks, not only in the worker.
        from gamebackend import celery  # noqa: F401

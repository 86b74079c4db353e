"""gamebackend: the Django project of the game server."""

from gamebackend.celery import app as celery_app

__all__ = ["celery_app"]

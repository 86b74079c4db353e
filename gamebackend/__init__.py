"""gamebackend: the Django project of the game server.

Importing the package loads nothing else (no Django, no Celery): the Celery app is loaded
by ``apps.GamebackendConfig.ready`` once Django is set up, and by ``celery -A
gamebackend.celery`` in the worker.
"""

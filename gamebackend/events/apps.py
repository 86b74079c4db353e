from django.apps import AppConfig


class EventsConfig(AppConfig):
    name = "gamebackend.events"
    label = "events"
    verbose_name = "Events"

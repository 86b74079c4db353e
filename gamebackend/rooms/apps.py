from django.apps import AppConfig


class RoomsConfig(AppConfig):
    name = "gamebackend.rooms"
    label = "rooms"
    verbose_name = "Rooms and battles"

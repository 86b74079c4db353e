from django.apps import AppConfig


class SnapshotsConfig(AppConfig):
    name = "gamebackend.snapshots"
    label = "snapshots"
    verbose_name = "Snapshots"

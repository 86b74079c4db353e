from django.apps import AppConfig


class ConsoleConfig(AppConfig):
    name = "console"
    verbose_name = "Operator console"

    def ready(self) -> None:
        from django.contrib import admin

        admin.site.site_header = "gamebackend console"
        admin.site.site_title = "gamebackend console"
        admin.site.index_title = "Live operations"

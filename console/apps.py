"""The console: its AdminSite (console/sites.py) replaces the stock one as ``admin.site``,
so every app's ``admin.py`` registers its pages there; this app adds the live pages."""

from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps


class ConsoleAdminConfig(admin_apps.AdminConfig):
    default = False
    default_site = "console.sites.ConsoleSite"


class ConsoleConfig(AppConfig):
    name = "console"
    verbose_name = "Operator console"

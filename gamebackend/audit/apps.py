from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "gamebackend.audit"
    label = "audit"
    verbose_name = "Audit"

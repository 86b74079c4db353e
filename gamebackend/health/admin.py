from django.contrib import admin

from gamebackend.health.models import WorkerHeartbeat


@admin.register(WorkerHeartbeat)
class WorkerHeartbeatAdmin(admin.ModelAdmin):
    list_display = ("node_id", "worker", "answered_at")
    readonly_fields = ("node_id", "worker", "answered_at")

    def has_add_permission(self, request, obj=None):
        return False

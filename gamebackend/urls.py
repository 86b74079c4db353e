from __future__ import annotations

from django.contrib import admin
from django.urls import path

from gamebackend.health import views as health_views

urlpatterns = [
    path("healthz", health_views.healthz, name="healthz"),
    path("readyz", health_views.readyz, name="readyz"),
    path("console/", admin.site.urls),
]

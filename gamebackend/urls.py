from __future__ import annotations

from django.contrib import admin
from django.urls import path

from gamebackend.gateway import views as gateway_views
from gamebackend.health import views as health_views

urlpatterns = [
    path("healthz", health_views.healthz, name="healthz"),
    path("readyz", health_views.readyz, name="readyz"),
    path("metrics", health_views.metrics, name="metrics"),
    path("api/auth/guest", gateway_views.guest, name="auth-guest"),
    path("api/auth/ticket", gateway_views.ticket, name="auth-ticket"),
    path("console/", admin.site.urls),
]

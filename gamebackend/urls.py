from __future__ import annotations

from django.contrib import admin
from django.urls import path

from console import views as console_views
from gamebackend.gateway import views as gateway_views
from gamebackend.health import views as health_views

urlpatterns = [
    path("", console_views.landing, name="landing"),
    path("docs/<str:name>/", console_views.document, name="document"),
    path("healthz", health_views.healthz, name="healthz"),
    path("readyz", health_views.readyz, name="readyz"),
    path("api/auth/guest", gateway_views.guest, name="auth-guest"),
    path("api/auth/ticket", gateway_views.ticket, name="auth-ticket"),
    path("console/", admin.site.urls),
]

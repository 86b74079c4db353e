from __future__ import annotations

from django.contrib import admin
from django.urls import path, re_path

from console import views as console_views
from gamebackend.accounts import views as auth_views
from gamebackend.health import views as health_views
from gamebackend.play import views as play_views

urlpatterns = [
    path("", console_views.landing, name="landing"),
    path("docs/<str:name>/", console_views.document, name="document"),
    path("play/", play_views.play, name="play"),
    path("healthz", health_views.healthz, name="healthz"),
    path("readyz", health_views.readyz, name="readyz"),
    path("metrics", health_views.metrics, name="metrics"),
    path("api/auth/guest", auth_views.guest, name="auth-guest"),
    path("api/auth/device", auth_views.device, name="auth-device"),
    path("api/auth/register", auth_views.register, name="auth-register"),
    path("api/auth/login", auth_views.login, name="auth-login"),
    path("api/auth/refresh", auth_views.refresh, name="auth-refresh"),
    path("api/auth/logout", auth_views.logout, name="auth-logout"),
    path("api/auth/ticket", auth_views.ticket, name="auth-ticket"),
    # Anything else under /api/auth answers a JSON 404 too (the API never answers HTML).
    re_path(r"^api/auth(?:/(?P<rest>.*))?$", auth_views.not_found, name="auth-not-found"),
    path("console/", admin.site.urls),
]

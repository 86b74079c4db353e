"""The node's URLs plus a play page, as an app that serves one would add it."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.urls import path

from gamebackend.urls import urlpatterns as node_urlpatterns


def play(request: HttpRequest) -> HttpResponse:
    return HttpResponse("play")


urlpatterns = [*node_urlpatterns, path("play/", play, name="play")]

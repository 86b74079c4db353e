"""The node's URLs without the play page, as on a node that serves none."""

from __future__ import annotations

from gamebackend.urls import urlpatterns as node_urlpatterns

urlpatterns = [p for p in node_urlpatterns if getattr(p, "name", None) != "play"]

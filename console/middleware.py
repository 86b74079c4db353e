"""Content-Security-Policy for every HTML page the node serves (console and site pages).

Django 5.2 has no CSP support of its own (6.0 adds it). The policy allows only the node's
own scripts, styles, images and forms: the Django admin needs nothing else (its scripts are
files, its per-page data rides in ``data-`` attributes and JSON script blocks), and an
injected ``<script>``, inline event handler or foreign resource does not run. A page that
needs more sets its own ``Content-Security-Policy`` header, which is left as it is.
"""

from __future__ import annotations

from typing import Final

from django.http import HttpRequest, HttpResponse
from django.utils.deprecation import MiddlewareMixin

CONTENT_SECURITY_POLICY: Final = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
HEADER: Final = "Content-Security-Policy"


class ContentSecurityPolicyMiddleware(MiddlewareMixin):
    """Adds the policy to HTML responses that have none (sync and async alike)."""

    def process_response(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        if HEADER not in response and response.get("Content-Type", "").startswith("text/html"):
            response[HEADER] = CONTENT_SECURITY_POLICY
        return response

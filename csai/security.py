"""Response headers Django's SecurityMiddleware does not set.

- ``Content-Security-Policy`` (settings.CSAI_CONTENT_SECURITY_POLICY) on every response
  that has none: scripts and styles come only from our static files, never inline.
- ``Cache-Control: private, no-store`` on every answer to a request that carries a login
  (session cookie or Authorization header): a page or a ticket shown to one person is
  kept by no shared cache, and by no browser history after logout.

Placed after WhiteNoise, so static files keep their long-lived public caching.
"""

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils.cache import patch_cache_control


def _carries_login(request: HttpRequest) -> bool:
    return settings.SESSION_COOKIE_NAME in request.COOKIES or "HTTP_AUTHORIZATION" in request.META


class SecurityHeadersMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        response.headers.setdefault("Content-Security-Policy", settings.CSAI_CONTENT_SECURITY_POLICY)
        if _carries_login(request):
            patch_cache_control(response, private=True, no_store=True)
        return response

"""Errors mapped to HTTP in one place.

Every error answer has the same three shapes: JSON under /api/ (a client there parses
JSON), a message in #flash for htmx (whatever the request targeted), the site's page
otherwise. Business failures are ``ApplicationError``. An outage of the database or the broker is
not a bug: the request may well succeed when sent again, so every interface answers it
with 503 and ``Retry-After`` (JSON under /api/, a short page in the console) instead of
the 500 page. The DRF exception handler covers the API; ``OutageMiddleware`` the rest.
"""

import logging

import kombu.exceptions
import redis
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.loader import render_to_string
from django.views import defaults
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

logger = logging.getLogger(__name__)

# The database, Redis or the broker is unreachable or restarting (django.db wraps psycopg's
# connection failures in OperationalError / InterfaceError; Celery's publish raises kombu's).
INFRASTRUCTURE_ERRORS = (
    OperationalError,
    InterfaceError,
    redis.ConnectionError,
    redis.TimeoutError,
    kombu.exceptions.OperationalError,
)
# Long enough for an embedded server's restart; senders back off from here.
RETRY_AFTER_SECONDS = 15
UNAVAILABLE = "The service is briefly unavailable; send the request again later."


class ApplicationError(Exception):
    """A request the product refuses for a business reason (not a bug)."""

    def __init__(self, message: str, *, status_code: int = status.HTTP_400_BAD_REQUEST, extra=None):
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.extra = extra or {}


def _is_api(request: HttpRequest) -> bool:
    return request.path.startswith("/api/")


def _error(request: HttpRequest, status_code: int, message: str, template: str, **context) -> HttpResponse:
    """An error answer in the shape its client reads."""
    if _is_api(request):
        return JsonResponse({"detail": message}, status=status_code)
    if request.headers.get("HX-Request") == "true":
        # htmx swaps 4xx answers (base.html's htmx-config): into #flash, not the request's target.
        html = render_to_string("review/_error.html", {"message": message})
        response = HttpResponse(html, status=status_code)
        response["HX-Retarget"], response["HX-Reswap"] = "#flash", "innerHTML"
        return response
    html = render_to_string(template, {"message": message, **context}, request)
    return HttpResponse(html, status=status_code)


def _outage(request: HttpRequest, error: Exception) -> None:
    logger.error(
        "infrastructure unavailable: answering 503",
        extra={"path": request.path, "error": type(error).__name__, "detail": str(error)[:200]},
    )


def exception_handler(exc, context):
    if isinstance(exc, ApplicationError):
        return Response({"detail": exc.message, **exc.extra}, status=exc.status_code)
    if isinstance(exc, INFRASTRUCTURE_ERRORS):
        _outage(context["request"], exc)
        return Response(
            {"detail": UNAVAILABLE},
            status=status.HTTP_503_SERVICE_UNAVAILABLE,
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )
    return drf_exception_handler(exc, context)


class OutageMiddleware:
    """503 with Retry-After, not the 500 page, when a view outside DRF meets an outage.

    Last in MIDDLEWARE, so it sees a view's exception first. The page renders without the
    request's user: looking the user up would need the database that just failed.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, INFRASTRUCTURE_ERRORS):
            return None
        _outage(request, exception)
        if _is_api(request):
            response = JsonResponse({"detail": UNAVAILABLE}, status=503)
        else:
            response = HttpResponse(render_to_string("503.html"), status=503)
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response


# PostgreSQL cannot store a NUL (0x00) in text: a query or a write carrying one fails with
# DataError, a 500. Browsers never send one; a request that does is refused whole.
NUL_REFUSED = "The request contains a null character (\\x00), which cannot be stored. Remove it."


class NulCharacterMiddleware:
    """400 for a NUL anywhere in the path, the query string or a form field (names too).

    Refused rather than stripped: stripping would silently turn one value into another
    (``billing\\x00`` into ``billing``), and Django's forms and DRF's serializers already
    refuse NUL the same way, so every interface answers it alike. Before any view, so no
    view needs its own check. Form bodies under /api/ are left to DRF's parsers (its
    CharField refuses NUL; the webhook reads its signed raw body itself, size first).
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if _carries_nul(request):
            return _error(request, 400, NUL_REFUSED, "400.html")
        return self.get_response(request)


def _carries_nul(request: HttpRequest) -> bool:
    if "\x00" in request.path:
        return True
    fields = [request.GET] if _is_api(request) else [request.GET, request.POST]
    return any(
        "\x00" in name or any("\x00" in value for value in values)
        for data in fields
        for name, values in data.lists()
    )


# Root URLconf handlers (csai.urls).


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    return _error(request, 400, "The request could not be understood.", "400.html")


def permission_denied(request: HttpRequest, exception: Exception) -> HttpResponse:
    return _error(request, 403, "Your role does not include this page or action.", "403.html")


def not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    return _error(request, 404, "Not found.", "404.html", request_path=request.path)


def server_error(request: HttpRequest) -> HttpResponse:
    if _is_api(request):
        return JsonResponse({"detail": "Server error."}, status=500)
    return defaults.server_error(request)

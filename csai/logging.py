"""Correlation ids: one id follows a ticket from the webhook through every Celery task.

The id lives in a context variable. The HTTP middleware sets it from ``X-Correlation-ID``
(or a new one), Celery carries it in a task header, and the log filter adds it to every
JSON log line.
"""

import contextvars
import logging
import re
import uuid

from celery.signals import before_task_publish, task_postrun, task_prerun

HEADER = "X-Correlation-ID"
_VALID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
_current: contextvars.ContextVar[str | None] = contextvars.ContextVar("correlation_id", default=None)


def new_correlation_id() -> str:
    return uuid.uuid4().hex


def get_correlation_id() -> str | None:
    return _current.get()


def set_correlation_id(value: str | None) -> contextvars.Token:
    return _current.set(value)


def clean_correlation_id(value: str | None) -> str | None:
    """An incoming id is untrusted text: keep it only if it is short and plain."""
    return value if value and _VALID.match(value) else None


class CorrelationIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "correlation_id"):
            record.correlation_id = _current.get()
        return True


class ClientErrorFilter(logging.Filter):
    """A 4xx on ``django.request`` is one line, without a traceback.

    Django logs a 403 (PermissionDenied from an access helper), or a 400 raised as an
    exception, with the exception's traceback; a refused request is expected, not a bug.
    A 5xx keeps its traceback.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if 400 <= getattr(record, "status_code", 0) < 500:
            record.exc_info = None
            record.exc_text = None
        return True


class CorrelationIdMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        correlation_id = clean_correlation_id(request.headers.get(HEADER)) or new_correlation_id()
        # Not reset afterwards: Django logs the response status after the middleware chain
        # returns, and that line should carry the id too. The next request sets its own.
        set_correlation_id(correlation_id)
        response = self.get_response(request)
        response[HEADER] = correlation_id
        return response


# Celery's own message property "correlation_id" is the task id, so ours needs its own name.
TASK_HEADER = "csai_correlation_id"


@before_task_publish.connect
def _add_header(headers=None, **_):
    correlation_id = _current.get()
    if headers is not None and correlation_id:
        headers.setdefault(TASK_HEADER, correlation_id)


@task_prerun.connect
def _enter_task(task=None, **_):
    set_correlation_id(getattr(task.request, TASK_HEADER, None))


@task_postrun.connect
def _leave_task(**_):
    set_correlation_id(None)

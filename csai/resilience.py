"""What every Celery task does about failing infrastructure: retry, long enough to ride out
a restart of PostgreSQL or Redis.

The app's default task class (``csai.celery``), so no task can forget it. Errors of the
infrastructure — the database connection, the broker, Redis — are retried with exponential
backoff and full jitter, capped at two minutes between tries; nine retries span about four
minutes on average. A task still failing after that is left to the sweeps, which find its
work from the database once the servers are back. Any other error is a bug: no retry.
"""

import kombu.exceptions
import redis
from celery import Task
from django.db import InterfaceError, OperationalError

INFRASTRUCTURE_ERRORS = (
    OperationalError,  # PostgreSQL gone, restarting, or refusing connections
    InterfaceError,  # a connection Django held was closed under it
    redis.ConnectionError,
    redis.TimeoutError,
    kombu.exceptions.OperationalError,  # the broker refused a message (a retry, the next step)
    ConnectionError,
)
INFRASTRUCTURE_ERROR_NAMES = tuple(sorted({error.__name__ for error in INFRASTRUCTURE_ERRORS}))


class ResilientTask(Task):
    acks_late = True
    autoretry_for = INFRASTRUCTURE_ERRORS
    retry_backoff = True
    retry_backoff_max = 120
    retry_jitter = True
    max_retries = 9

"""One Redis client per process for the product's own counters (its pool is thread-safe)."""

import threading

import redis
from django.conf import settings

_lock = threading.Lock()
_client: redis.Redis | None = None


def redis_client() -> redis.Redis:
    """The process's client, made once even when many threads ask for it at the same moment.

    functools.cache let each of those threads build a client of its own and keep only one.
    A spare client is collected as soon as ``.pipeline()`` returns, and collecting it closes
    its pool, including the connection the pipeline is using (CI saw 500s from the webhook).
    """
    global _client
    with _lock:
        if _client is None:
            _client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=5, socket_connect_timeout=2)
        return _client


def redis_client_reset() -> None:
    """Forget the client, so the next call connects to ``settings.REDIS_URL`` afresh."""
    global _client
    with _lock:
        _client = None

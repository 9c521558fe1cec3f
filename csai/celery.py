import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "csai.settings")

# Every task retries infrastructure errors (csai.resilience) unless it says otherwise.
app = Celery("csai", task_cls="csai.resilience:ResilientTask")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

from csai import metrics  # noqa: E402, F401 - counts every finished task


def worker_queues() -> str:
    """Every queue a worker must consume, as Celery's -Q argument expects."""
    from django.conf import settings

    routed = {route["queue"] for route in settings.CELERY_TASK_ROUTES.values()}
    return ",".join(sorted({settings.CELERY_TASK_DEFAULT_QUEUE, *routed}))

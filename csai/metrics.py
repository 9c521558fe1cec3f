"""Prometheus metrics at ``GET /metrics``, shared by every process through Redis.

Web workers and Celery workers run as many processes (and, under Docker Compose, in other
containers), so counters live in Redis hashes that all of them increment; a scrape reads
them back, plus gauges counted from the database at scrape time. Recording a metric never
fails the request or task it describes.

Access: ``Authorization: Bearer $CSAI_METRICS_TOKEN``, or a logged-in staff user.
"""

import hmac
import logging

import redis
from celery.signals import task_postrun
from django.conf import settings
from django.db.models import Count
from django.http import HttpResponse, HttpResponseForbidden
from django.views.decorators.http import require_safe
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

from csai.redis import redis_client

logger = logging.getLogger(__name__)

PREFIX = "csai:metrics:"
WEBHOOK_REQUESTS = PREFIX + "webhook_requests"  # field: status code
WEBHOOK_SECONDS = PREFIX + "webhook_seconds"  # fields: bucket upper bounds, "sum"
TASKS = PREFIX + "tasks"  # field: "<task>|<state>"
LAUNCHER_RESTARTS = PREFIX + "launcher_restarts"  # field: child or embedded server name
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


def _record(apply) -> None:
    try:
        pipe = redis_client().pipeline(transaction=False)
        apply(pipe)
        pipe.execute()
    except redis.RedisError:
        logger.debug("metric not recorded: Redis unavailable")


def record_webhook(*, status: int, seconds: float) -> None:
    def apply(pipe):
        pipe.hincrby(WEBHOOK_REQUESTS, str(status), 1)
        bucket = next((str(bound) for bound in LATENCY_BUCKETS if seconds <= bound), "+Inf")
        pipe.hincrby(WEBHOOK_SECONDS, bucket, 1)
        pipe.hincrbyfloat(WEBHOOK_SECONDS, "sum", seconds)

    _record(apply)


def record_launcher_restarts(restarts: dict[str, int]) -> bool:
    """Publish ``make run``'s restart counts (it is one process, and not the web's); True if done.

    The launcher writes its own counts whole, so a count missed while Redis was down (or
    being restarted) is written on its next try, and a new launcher starts from zero.
    """
    try:
        pipe = redis_client().pipeline(transaction=True)
        pipe.delete(LAUNCHER_RESTARTS)
        pipe.hset(LAUNCHER_RESTARTS, mapping=restarts)
        pipe.execute()
    except redis.RedisError:
        logger.debug("launcher restarts not recorded: Redis unavailable")
        return False
    return True


@task_postrun.connect
def _record_task(task=None, state=None, **_):
    _record(lambda pipe: pipe.hincrby(TASKS, f"{task.name}|{state}", 1))


class _Collector:
    """Reads the shared counters and counts tickets, once per scrape."""

    def collect(self):
        client = redis_client()
        requests = CounterMetricFamily(
            "csai_webhook_requests", "Webhook deliveries answered, by HTTP status.", labels=["status"]
        )
        for status, count in sorted(client.hgetall(WEBHOOK_REQUESTS).items()):
            requests.add_metric([status.decode()], int(count))
        yield requests

        stored = {key.decode(): float(value) for key, value in client.hgetall(WEBHOOK_SECONDS).items()}
        cumulative, buckets = 0.0, []
        for bound in (*map(str, LATENCY_BUCKETS), "+Inf"):
            cumulative += stored.get(bound, 0.0)
            buckets.append((bound, cumulative))
        yield HistogramMetricFamily(
            "csai_webhook_request_duration_seconds",
            "Time to answer a webhook delivery.",
            buckets=buckets,
            sum_value=stored.get("sum", 0.0),
        )

        tasks = CounterMetricFamily(
            "csai_tasks", "Celery tasks finished, by task and state.", labels=["task", "state"]
        )
        for field, count in sorted(client.hgetall(TASKS).items()):
            task, _, state = field.decode().partition("|")
            tasks.add_metric([task, state], int(count))
        yield tasks

        restarts = CounterMetricFamily(
            "csai_launcher_restarts",
            "Children and embedded servers that `make run` restarted after they exited.",
            labels=["process"],
        )
        for name, count in sorted(client.hgetall(LAUNCHER_RESTARTS).items()):
            restarts.add_metric([name.decode()], int(count))
        yield restarts

        from tickets.models import Ticket  # csai is wiring: read the app's data at scrape time

        by_status = GaugeMetricFamily("csai_tickets", "Tickets by status.", labels=["status"])
        for row in Ticket.objects.values("status").annotate(n=Count("id")).order_by("status"):
            by_status.add_metric([row["status"]], row["n"])
        yield by_status

        sla = GaugeMetricFamily(
            "csai_open_tickets_sla", "Unresolved tickets by SLA state.", labels=["sla_state"]
        )
        open_tickets = Ticket.objects.filter(resolved_at__isnull=True)
        for row in open_tickets.values("sla_state").annotate(n=Count("id")).order_by("sla_state"):
            sla.add_metric([row["sla_state"]], row["n"])
        yield sla

        waiting = Ticket.objects.filter(stage=Ticket.Stage.TRIGGER).count()
        yield GaugeMetricFamily(
            "csai_tickets_awaiting_intake", "Tickets not yet taken into triage.", value=waiting
        )

        from agents.models import DeadLetter, PipelineRun

        runs = GaugeMetricFamily("csai_pipeline_runs", "Agent pipeline runs by status.", labels=["status"])
        for row in PipelineRun.objects.values("status").annotate(n=Count("id")).order_by("status"):
            runs.add_metric([row["status"]], row["n"])
        yield runs
        yield GaugeMetricFamily(
            "csai_dead_letters_open",
            "Pipeline steps that failed for good and wait for a person to retry them.",
            value=DeadLetter.objects.filter(retried_at__isnull=True).count(),
        )


def _allowed(request) -> bool:
    token = settings.CSAI_METRICS_TOKEN
    header = request.headers.get("Authorization", "")
    if token and hmac.compare_digest(header.encode(), f"Bearer {token}".encode()):
        return True
    return request.user.is_authenticated and request.user.is_staff


@require_safe
def metrics(request):
    if not _allowed(request):
        return HttpResponseForbidden("Bearer token or staff login required.\n", content_type="text/plain")
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Collector())
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)

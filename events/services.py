"""Every write to the outbox, the endpoints and their deliveries.

The flow: a product service calls ``event_emit`` inside the transaction of its change; on
commit the ``event_fan_out`` task makes one delivery per subscribed active endpoint and
queues a ``delivery_send`` task for each, which makes one attempt (``delivery_attempt``).
The ``events_sweep`` beat job (every minute) finds whatever a lost task or a killed worker
left: events never fanned out, deliveries due. Delivery is at least once: a worker killed
after the receiver's 2xx but before it was recorded sends again, with the same webhook-id.
"""

import json
import logging
import random
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime

import httpx
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from csai.errors import ApplicationError
from events import addresses, signing
from events.models import Attempt, Delivery, Endpoint, Event, EventType

logger = logging.getLogger(__name__)

PENDING, DELIVERED, FAILED = Delivery.Status.PENDING, Delivery.Status.DELIVERED, Delivery.Status.FAILED

# The sweep leaves alone what a queued task should be doing right now.
SWEEP_GRACE = timedelta(seconds=settings.CSAI_SWEEP_GRACE["events"])
SWEEP_BATCH = 1000
# A retry due within this many seconds is queued with a countdown; later ones are the sweep's.
COUNTDOWN_MAX_SECONDS = 60
# Retry-After is honoured up to this long.
RETRY_AFTER_MAX_SECONDS = 24 * 3600
EXCERPT_CHARS = 500
READ_BYTES = 4096
JITTER = 0.2

# --- the outbox ------------------------------------------------------------------------------

_NEXT_SEQUENCE = """
    INSERT INTO events_eventsequence (subject_kind, subject_id, last) VALUES (%s, %s, 1)
    ON CONFLICT (subject_kind, subject_id) DO UPDATE SET last = events_eventsequence.last + 1
    RETURNING last
"""


def event_emit(*, type: str, subject: tuple[str, int | str], payload: dict) -> Event:
    """Write an event to the outbox. Call inside the transaction of the change it announces
    (raises ``RuntimeError`` otherwise): it commits with the change or not at all, and its
    fan-out task is queued once the transaction commits.

    Numbers the subject's events 1, 2, 3 … in commit order: the subject's sequence row stays
    locked until the transaction ends. Emit after writing the changed rows, so every
    transaction takes its locks in the same order (the changed row, then the sequence).
    ``payload`` may hold datetimes (sent as ISO 8601, UTC).
    """
    if not connection.in_atomic_block:
        raise RuntimeError("event_emit must run inside the transaction of the change it announces.")
    if type not in EventType.values:
        raise ValueError(f"{type!r} is not an event type (events.models.EventType).")
    kind, subject_id = subject[0], str(subject[1])
    with connection.cursor() as cursor:
        cursor.execute(_NEXT_SEQUENCE, [kind, subject_id])
        (sequence,) = cursor.fetchone()
    payload = json.loads(json.dumps(payload, cls=DjangoJSONEncoder))  # what is stored is what is sent
    event = Event.objects.create(
        type=type,
        subject_kind=kind,
        subject_id=subject_id,
        sequence=sequence,
        payload=payload,
        created_at=timezone.now(),
    )
    # robust: the change is committed even if the broker is down right now; the sweep fans
    # the event out later.
    transaction.on_commit(lambda: _enqueue_fan_out(event.pk), robust=True)
    return event


def _enqueue_fan_out(event_id: int) -> None:
    from events.tasks import event_fan_out

    event_fan_out.delay(event_id)


def _enqueue_send(delivery_id: int, countdown: float = 0) -> None:
    from events.tasks import delivery_send

    delivery_send.apply_async((delivery_id,), countdown=countdown or None)


def event_body(event: Event) -> bytes:
    """The exact bytes sent for ``event``, the same on every attempt."""
    envelope = {
        "id": event.webhook_id,
        "type": event.type,
        "timestamp": event.created_at,
        "subject": {"kind": event.subject_kind, "id": event.subject_id},
        "sequence": event.sequence,
        "data": event.payload,
    }
    return json.dumps(envelope, cls=DjangoJSONEncoder, separators=(",", ":")).encode()


def event_fan_out(*, event_id: int) -> list[int] | None:
    """Make the event's deliveries, once: one per active endpoint that subscribes to its type
    and existed when it was written. Returns the ids of its pending deliveries (None: no such
    event). Holds the event row locked, so two fan-outs of one event make one set."""
    with transaction.atomic():
        event = Event.objects.select_for_update().filter(pk=event_id).first()
        if event is None:
            return None
        if event.fanned_out_at is None:
            now = timezone.now()
            endpoints = Endpoint.objects.filter(active=True, created_at__lte=event.created_at)
            Delivery.objects.bulk_create(
                [
                    Delivery(event=event, endpoint=endpoint, next_attempt_at=now, created_at=now)
                    for endpoint in endpoints
                    if endpoint.subscribes_to(event.type)
                ],
                ignore_conflicts=True,
            )
            event.fanned_out_at = now
            event.save(update_fields=["fanned_out_at"])
        return list(event.deliveries.filter(status=PENDING).values_list("pk", flat=True))


# --- one attempt -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    """What one attempt got back: a status code, or an error and no status code."""

    status_code: int | None
    error: str
    duration_ms: int
    excerpt: str = ""
    retry_after: float | None = None
    permanent: bool = False  # no point retrying (the address is refused)

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300 and not self.error


_client_lock = threading.Lock()
_client: httpx.Client | None = None


def _http() -> httpx.Client:
    """One client per process (created after a prefork worker forks), keeping connections alive."""
    global _client
    with _client_lock:
        if _client is None:
            _client = httpx.Client(follow_redirects=False, headers={"user-agent": "CSAI-Webhooks/1"})
        return _client


def _retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date); None if absent or bad."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        seconds = float(value)
    else:
        try:
            seconds = (parsedate_to_datetime(value) - timezone.now()).total_seconds()
        except (TypeError, ValueError, OverflowError):
            return None
    return min(max(seconds, 0.0), RETRY_AFTER_MAX_SECONDS)


def _post(url: str, *, headers: dict[str, str], body: bytes) -> Answer:
    """POST once. A 2xx counts only when it came within the timeout; redirects are not followed."""
    timeout = settings.CSAI_EVENT_TIMEOUT_SECONDS
    started = time.monotonic()

    def elapsed_ms() -> int:
        return round((time.monotonic() - started) * 1000)

    try:
        addresses.url_resolve_check(url)
    except addresses.AddressRefused as refused:
        return Answer(None, f"refused: {refused}"[:300], elapsed_ms(), permanent=True)
    except (OSError, ValueError) as error:  # no answer from DNS, or a name it cannot encode
        return Answer(None, f"DNS: {error}"[:300], elapsed_ms())
    try:
        with _http().stream("POST", url, content=body, headers=headers, timeout=timeout) as response:
            answered_ms = elapsed_ms()
            received = b""
            for chunk in response.iter_bytes():
                received += chunk
                if len(received) >= READ_BYTES:
                    break
    except httpx.TimeoutException:
        return Answer(None, f"no answer within {timeout} s", elapsed_ms())
    except (httpx.HTTPError, httpx.InvalidURL) as error:
        return Answer(None, f"{type(error).__name__}: {error}"[:300], elapsed_ms())
    excerpt = received.decode("utf-8", errors="replace")[:EXCERPT_CHARS]
    error = (
        f"answered after {answered_ms} ms, over the {timeout} s limit" if answered_ms > timeout * 1000 else ""
    )
    retry_after = (
        _retry_after(response.headers.get("retry-after")) if response.status_code in (429, 503) else None
    )
    return Answer(response.status_code, error, answered_ms, excerpt, retry_after)


def _claim(delivery_id: int, now: datetime) -> datetime | None:
    """Take a due pending delivery for one attempt (a conditional UPDATE, committed at once):
    nobody else sends it until the returned lease ends. None: not due, taken or finished."""
    timeout = settings.CSAI_EVENT_TIMEOUT_SECONDS
    lease = now + timedelta(seconds=3 * timeout + 10)  # connect, send and read may each take ``timeout``
    claimed = (
        Delivery.objects.filter(pk=delivery_id, status=PENDING, next_attempt_at__lte=now)
        .filter(Q(locked_until__isnull=True) | Q(locked_until__lte=now))
        .update(locked_until=lease, attempts=F("attempts") + 1, updated_at=now)
    )
    return lease if claimed else None


def _next_delay(answer: Answer, attempt_in_schedule: int) -> float | None:
    """Seconds until the next attempt; None when there is none (permanent, gone, exhausted)."""
    if answer.permanent or answer.status_code == 410:
        return None
    if answer.retry_after is not None:
        return answer.retry_after
    schedule = settings.CSAI_EVENT_RETRY_SCHEDULE
    if attempt_in_schedule > len(schedule):
        return None
    return schedule[attempt_in_schedule - 1] * random.uniform(1 - JITTER, 1 + JITTER)


def delivery_attempt(*, delivery_id: int) -> str:
    """Send a due delivery once and record what came back; returns what happened.

    Never sends a delivery that received its 2xx: the claim only takes a pending one, and
    the 2xx is recorded as delivered before anything else. A failure is retried on
    ``CSAI_EVENT_RETRY_SCHEDULE`` (Retry-After on 429/503 takes its place); 410 Gone
    disables the endpoint; a refused address or the last retry fails the delivery.
    """
    delivery = Delivery.objects.select_related("event", "endpoint").filter(pk=delivery_id).first()
    if delivery is None:
        return "missing"
    if delivery.status != PENDING:
        return f"already-{delivery.status}"
    endpoint = delivery.endpoint
    if not endpoint.active:
        _fail_pending(endpoint=endpoint, why="endpoint disabled")
        return "endpoint-disabled"
    now = timezone.now()
    lease = _claim(delivery_id, now)
    if lease is None:
        return "not-due"
    delivery.refresh_from_db(fields=["attempts", "schedule_offset"])
    body = event_body(delivery.event)
    headers = signing.headers(
        secret=endpoint.secret, webhook_id=delivery.event.webhook_id, timestamp=int(time.time()), body=body
    )
    answer = _post(endpoint.url, headers=headers, body=body)
    return _record(delivery, lease=lease, answer=answer)


def _record(delivery: Delivery, *, lease: datetime, answer: Answer) -> str:
    now = timezone.now()
    number = delivery.attempts
    endpoint = delivery.endpoint
    last = {
        "last_status_code": answer.status_code,
        "last_error": answer.error,
        "last_duration_ms": answer.duration_ms,
        "response_excerpt": answer.excerpt,
        "locked_until": None,
        "updated_at": now,
    }
    delay = None
    with transaction.atomic():
        Attempt.objects.create(
            delivery=delivery,
            number=number,
            attempted_at=now - timedelta(milliseconds=answer.duration_ms),
            status_code=answer.status_code,
            error=answer.error,
            duration_ms=answer.duration_ms,
            response_excerpt=answer.excerpt,
        )
        if answer.succeeded:
            Delivery.objects.filter(pk=delivery.pk, status=PENDING).update(
                status=DELIVERED, delivered_at=now, next_attempt_at=None, **last
            )
            Endpoint.objects.filter(pk=endpoint.pk, failing_since__isnull=False).update(failing_since=None)
            outcome = "delivered"
        else:
            delay = _next_delay(answer, number - delivery.schedule_offset)
            if delay is None:
                outcome, changes = "failed", {"status": FAILED, "next_attempt_at": None}
            else:
                outcome, changes = "retrying", {"next_attempt_at": now + timedelta(seconds=delay)}
            Delivery.objects.filter(pk=delivery.pk, status=PENDING, locked_until=lease).update(
                **changes, **last
            )
            Endpoint.objects.filter(pk=endpoint.pk, failing_since__isnull=True).update(failing_since=now)
    logger.info(
        "webhook attempt",
        extra={
            "delivery_id": delivery.pk,
            "endpoint_id": endpoint.pk,
            "webhook_id": delivery.event.webhook_id,
            "attempt": number,
            "status_code": answer.status_code,
            "error": answer.error,
            "duration_ms": answer.duration_ms,
            "outcome": outcome,
        },
    )
    if answer.status_code == 410:
        endpoint_disable(endpoint_id=endpoint.pk, reason="The receiver answered 410 Gone.")
    elif not answer.succeeded:
        _disable_if_failing_too_long(endpoint.pk, now)
    if delay is not None and delay <= COUNTDOWN_MAX_SECONDS:
        _enqueue_send(delivery.pk, countdown=delay)
    return outcome


def _disable_if_failing_too_long(endpoint_id: int, now: datetime) -> None:
    days = settings.CSAI_EVENT_DISABLE_AFTER_DAYS
    failing_since = Endpoint.objects.filter(pk=endpoint_id).values_list("failing_since", flat=True).first()
    if failing_since is not None and now - failing_since >= timedelta(days=days):
        endpoint_disable(endpoint_id=endpoint_id, reason=f"Every attempt failed for {days} days.")


def _fail_pending(*, endpoint: Endpoint, why: str) -> int:
    """Fail the endpoint's pending deliveries that no worker is sending right now."""
    now = timezone.now()
    return (
        Delivery.objects.filter(endpoint=endpoint, status=PENDING)
        .filter(Q(locked_until__isnull=True) | Q(locked_until__lte=now))
        .update(status=FAILED, next_attempt_at=None, locked_until=None, last_error=why, updated_at=now)
    )


# --- endpoints -------------------------------------------------------------------------------


def _checked_url(url: str) -> str:
    try:
        addresses.url_check(url)
    except addresses.AddressRefused as refused:
        raise ApplicationError(f"Webhooks cannot go to this URL: {refused}") from None
    return url


def _checked_types(event_types: list[str]) -> list[str]:
    unknown = sorted(set(event_types) - set(EventType.values))
    if unknown:
        raise ApplicationError(f"Unknown event types: {', '.join(unknown)}.")
    return sorted(set(event_types))


def endpoint_create(*, url: str, description: str = "", event_types: list[str] | None = None) -> Endpoint:
    """A new active endpoint with a fresh secret; it receives events written from now on.
    Raises ``ApplicationError`` for a refused address or an unknown event type."""
    return Endpoint.objects.create(
        url=_checked_url(url),
        description=description,
        event_types=_checked_types(event_types or []),
        secret=signing.secret_generate(),
    )


ENDPOINT_FIELDS = ("url", "description", "event_types", "active")


def endpoint_update(*, endpoint: Endpoint, **changes) -> Endpoint:
    """Change an endpoint's ``url``, ``description``, ``event_types`` or ``active``. Turning
    it on again forgets why it was off; turning it off fails its pending deliveries (a
    replay sends them once it is back)."""
    unknown = set(changes) - set(ENDPOINT_FIELDS)
    if unknown:
        raise TypeError(f"endpoint_update() got unexpected fields {sorted(unknown)}")
    fields = []
    if "url" in changes:
        endpoint.url = _checked_url(changes["url"])
        fields.append("url")
    if "description" in changes:
        endpoint.description = changes["description"]
        fields.append("description")
    if "event_types" in changes:
        endpoint.event_types = _checked_types(changes["event_types"])
        fields.append("event_types")
    if "active" in changes and changes["active"] != endpoint.active:
        endpoint.active = changes["active"]
        endpoint.disabled_reason = ""
        endpoint.failing_since = None
        fields += ["active", "disabled_reason", "failing_since"]
    if fields:
        with transaction.atomic():
            endpoint.save(update_fields=[*fields, "updated_at"])
            if not endpoint.active:
                _fail_pending(endpoint=endpoint, why="endpoint disabled")
    return endpoint


def endpoint_delete(*, endpoint: Endpoint) -> None:
    """Remove the endpoint with its deliveries and their attempts."""
    endpoint.delete()


def endpoint_disable(*, endpoint_id: int, reason: str) -> bool:
    """The product turns an endpoint off (410 Gone, failing for days) and emails the people
    who manage endpoints; False when it was already off."""
    with transaction.atomic():
        endpoint = Endpoint.objects.select_for_update().filter(pk=endpoint_id, active=True).first()
        if endpoint is None:
            return False
        endpoint.active = False
        endpoint.disabled_reason = reason[:200]
        endpoint.save(update_fields=["active", "disabled_reason", "updated_at"])
        _fail_pending(endpoint=endpoint, why="endpoint disabled")
    logger.warning("webhook endpoint disabled", extra={"endpoint_id": endpoint_id, "reason": reason})
    _managers_notify(endpoint=endpoint)
    return True


def _managers_notify(*, endpoint: Endpoint) -> None:
    """Email everyone who may manage endpoints (supervisors and admins) and has an address."""
    manages = Q(
        groups__permissions__content_type__app_label="events", groups__permissions__codename="change_endpoint"
    ) | Q(is_superuser=True)
    recipients = list(
        get_user_model()
        .objects.filter(manages, is_active=True)
        .exclude(email="")
        .values_list("email", flat=True)
        .distinct()
    )
    if not recipients:
        return
    send_mail(
        f"[CSAI] Webhook endpoint disabled: {endpoint.url}"[:200],
        f"{endpoint.disabled_reason}\n\nEndpoint #{endpoint.pk}: {endpoint.url}\n"
        "Its pending deliveries were marked failed. Fix the receiver, turn the endpoint on again "
        "and replay its failed deliveries (admin or POST /api/v1/webhook-endpoints/<id>/replay/).",
        None,
        recipients,
        fail_silently=True,
    )


# --- replay ----------------------------------------------------------------------------------


def _restart(deliveries, now: datetime) -> list[int]:
    """Make failed and waiting deliveries due now, each with a fresh retry schedule."""
    ready = deliveries.filter(Q(status=FAILED) | Q(status=PENDING)).filter(
        Q(locked_until__isnull=True) | Q(locked_until__lte=now)
    )
    ids = list(ready.values_list("pk", flat=True))
    Delivery.objects.filter(pk__in=ids).update(
        status=PENDING,
        next_attempt_at=now,
        locked_until=None,
        schedule_offset=F("attempts"),
        updated_at=now,
    )
    for delivery_id in ids:
        transaction.on_commit(lambda delivery_id=delivery_id: _enqueue_send(delivery_id), robust=True)
    return ids


def event_replay(*, event: Event) -> int:
    """Send an event again to every active endpoint that subscribes to it and has not had a
    2xx for it (never twice to one that did), with the same webhook-id. Returns how many
    deliveries were queued."""
    now = timezone.now()
    with transaction.atomic():
        endpoints = [e for e in Endpoint.objects.filter(active=True) if e.subscribes_to(event.type)]
        Delivery.objects.bulk_create(
            [Delivery(event=event, endpoint=e, next_attempt_at=now, created_at=now) for e in endpoints],
            ignore_conflicts=True,
        )
        return len(_restart(Delivery.objects.filter(event=event, endpoint__in=endpoints), now))


def deliveries_replay_failed(*, since: datetime, endpoint: Endpoint | None = None) -> int:
    """Send again every failed delivery made since ``since`` (of one endpoint, or of every
    active one). Returns how many were queued. Raises ``ApplicationError`` (409) for an
    endpoint that is off."""
    if endpoint is not None and not endpoint.active:
        raise ApplicationError("The endpoint is disabled: turn it on before replaying.", status_code=409)
    failed = Delivery.objects.filter(status=FAILED, created_at__gte=since, endpoint__active=True)
    if endpoint is not None:
        failed = failed.filter(endpoint=endpoint)
    with transaction.atomic():
        return len(_restart(failed, timezone.now()))


def deliveries_replay(*, deliveries) -> int:
    """Send these deliveries again (the admin's action); delivered ones and those of disabled
    endpoints are left alone."""
    with transaction.atomic():
        return len(_restart(deliveries.filter(endpoint__active=True), timezone.now()))


# --- the sweep -------------------------------------------------------------------------------


def events_sweep(*, now: datetime | None = None) -> tuple[int, int]:
    """Queue again what lost its task: events not fanned out and deliveries due, each left
    ``SWEEP_GRACE`` for its own task first. Returns (events, deliveries) queued."""
    now = now or timezone.now()
    cutoff = now - SWEEP_GRACE
    events = list(
        Event.objects.filter(fanned_out_at__isnull=True, created_at__lte=cutoff)
        .order_by("created_at")
        .values_list("pk", flat=True)[:SWEEP_BATCH]
    )
    due = list(
        Delivery.objects.filter(status=PENDING, next_attempt_at__lte=cutoff)
        .filter(Q(locked_until__isnull=True) | Q(locked_until__lte=now))
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:SWEEP_BATCH]
    )
    for event_id in events:
        _enqueue_fan_out(event_id)
    for delivery_id in due:
        _enqueue_send(delivery_id)
    return len(events), len(due)

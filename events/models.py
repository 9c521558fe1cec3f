"""The outbox (``Event``), the receivers (``Endpoint``) and what was sent to them
(``Delivery``, one ``Attempt`` per try)."""

import uuid

from django.db import models
from django.db.models import Q

# The webhook-id of an event: "evt_" and its uuid in hex (no ".": the id is part of what is signed).
WEBHOOK_ID_PREFIX = "evt_"


class EventType(models.TextChoices):
    """Every event the product announces; README "Outbound events" documents each payload."""

    TICKET_CREATED = "ticket.created", "A ticket arrived"
    TICKET_TRIAGED = "ticket.triaged", "A ticket's category or priority was set"
    TICKET_MESSAGE_CREATED = "ticket.message.created", "A message to the customer was written"
    TICKET_ESCALATED = "ticket.escalated", "A ticket was escalated to a team"
    TICKET_ASSIGNED = "ticket.assigned", "A ticket was assigned to a team or person"
    TICKET_RESOLVED = "ticket.resolved", "A ticket was resolved"
    TICKET_REOPENED = "ticket.reopened", "A ticket was opened again"
    TICKET_CSAT = "ticket.csat", "A customer rated how we did"
    REVIEW_CREATED = "review.created", "A decision was queued for a person"
    POLICY_PHASE_CHANGED = "policy.phase_changed", "A decision type's automation phase changed"
    ALERT_RAISED = "alert.raised", "The quality monitor raised an alert"


class Event(models.Model):
    """Something the outside world must hear about, written in the transaction of the change.

    ``sequence`` counts the events of one subject (a ticket: ``("ticket", "42")``) from 1
    without gaps, in commit order, so a receiver can put them in order.
    """

    uid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    type = models.CharField(max_length=64, choices=EventType.choices)
    subject_kind = models.CharField(max_length=32)
    subject_id = models.CharField(max_length=64)
    sequence = models.PositiveIntegerField()
    payload = models.JSONField(default=dict)
    created_at = models.DateTimeField()
    # When deliveries were made for the subscribed endpoints; null until the fan-out ran.
    fanned_out_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["subject_kind", "subject_id", "sequence"], name="event_subject_sequence_unique"
            ),
            models.CheckConstraint(condition=Q(sequence__gte=1), name="event_sequence_positive"),
        ]
        indexes = [
            # events_sweep: events whose fan-out task was lost (broker down at commit, worker killed).
            models.Index(
                fields=["created_at"],
                name="event_not_fanned_out_idx",
                condition=Q(fanned_out_at__isnull=True),
            ),
            # Admin list: newest first, filtered by type.
            models.Index(fields=["type", "-created_at"], name="event_type_created_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.subject_kind}#{self.subject_id} ({self.sequence})"

    @property
    def webhook_id(self) -> str:
        return f"{WEBHOOK_ID_PREFIX}{self.uid.hex}"

    @staticmethod
    def uid_from_webhook_id(webhook_id: str) -> uuid.UUID | None:
        if not webhook_id.startswith(WEBHOOK_ID_PREFIX):
            return None
        try:
            return uuid.UUID(hex=webhook_id.removeprefix(WEBHOOK_ID_PREFIX))
        except ValueError:
            return None


class EventSequence(models.Model):
    """The last sequence number given to a subject's events. Its row is locked by the
    transaction that emits, so two changes of one ticket are numbered in commit order."""

    subject_kind = models.CharField(max_length=32)
    subject_id = models.CharField(max_length=64)
    last = models.PositiveIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["subject_kind", "subject_id"], name="eventsequence_subject_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.subject_kind}#{self.subject_id}: {self.last}"


class Endpoint(models.Model):
    """A receiver of webhooks: where to, signed with which secret, for which event types."""

    url = models.URLField(max_length=2000)
    description = models.CharField(max_length=200, blank=True)
    # "whsec_" + base64 of 32 random bytes (events.signing.secret_generate).
    secret = models.CharField(max_length=100)
    # Event types sent to it; empty: every type.
    event_types = models.JSONField(default=list, blank=True)
    active = models.BooleanField(default=True)
    # Why the product turned it off (410 Gone, failing for days); empty when a person did.
    disabled_reason = models.CharField(max_length=200, blank=True)
    # Start of the current run of failed attempts; null after any success.
    failing_since = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(url__startswith="http://") | Q(url__startswith="https://"),
                name="endpoint_url_http",
            ),
            models.CheckConstraint(
                condition=Q(secret__startswith="whsec_"),  # noqa: S106 - the prefix, not a secret
                name="endpoint_secret_whsec",
            ),
        ]

    def __str__(self) -> str:
        return self.url

    def subscribes_to(self, event_type: str) -> bool:
        return not self.event_types or event_type in self.event_types


class Delivery(models.Model):
    """One event for one endpoint: sent until a 2xx, or until the retries run out.

    Every attempt carries the event's webhook-id, so a receiver that sees one twice (a
    worker killed between the send and the record of its answer) can drop the copy.
    """

    class Status(models.TextChoices):
        PENDING = "pending"
        DELIVERED = "delivered"
        FAILED = "failed"

    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="deliveries")
    endpoint = models.ForeignKey(Endpoint, on_delete=models.CASCADE, related_name="deliveries")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    # Attempts made before the current retry schedule began (a replay begins it again).
    schedule_offset = models.PositiveSmallIntegerField(default=0)
    # When the next attempt is due; null unless pending.
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    # A worker holds the delivery until then while it sends (a conditional UPDATE claims it);
    # one killed mid-send lets go when this passes.
    locked_until = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=300, blank=True)
    last_duration_ms = models.PositiveIntegerField(null=True, blank=True)
    response_excerpt = models.CharField(max_length=500, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "deliveries"
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["event", "endpoint"], name="delivery_event_endpoint_unique"),
            models.CheckConstraint(
                condition=Q(status="pending", next_attempt_at__isnull=False)
                | (~Q(status="pending") & Q(next_attempt_at__isnull=True)),
                name="delivery_pending_has_next_attempt",
            ),
            models.CheckConstraint(
                condition=~Q(status="delivered") | Q(delivered_at__isnull=False),
                name="delivery_delivered_has_time",
            ),
        ]
        indexes = [
            # events_sweep: pending deliveries whose attempt is due.
            models.Index(fields=["next_attempt_at"], name="delivery_due_idx", condition=Q(status="pending")),
            # API: an endpoint's deliveries, newest first, optionally by status.
            models.Index(fields=["endpoint", "-created_at", "-id"], name="delivery_endpoint_created_idx"),
            # Replay: failed deliveries since a time (of one endpoint or all).
            models.Index(fields=["created_at"], name="delivery_failed_idx", condition=Q(status="failed")),
        ]

    def __str__(self) -> str:
        return f"{self.event_id} → {self.endpoint_id} ({self.status})"


class Attempt(models.Model):
    """One try of a delivery: what the receiver answered, and how fast."""

    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="attempt_log")
    number = models.PositiveSmallIntegerField()
    attempted_at = models.DateTimeField()
    # Null when no answer came (timeout, connection refused, address refused).
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.CharField(max_length=300, blank=True)
    duration_ms = models.PositiveIntegerField()
    response_excerpt = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["delivery", "number"]
        constraints = [
            models.UniqueConstraint(fields=["delivery", "number"], name="attempt_delivery_number_unique")
        ]

    def __str__(self) -> str:
        return f"attempt {self.number} of delivery {self.delivery_id}: {self.status_code or self.error}"

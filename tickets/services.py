"""Every write to tickets, customers and messages goes through these services."""

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Case, ExpressionWrapper, F, Q, Value, When
from django.db.models.fields import DateTimeField, DurationField
from django.utils import timezone

from csai.logging import new_correlation_id
from events.models import EventType
from events.services import event_emit
from tickets import delivery, signals
from tickets.models import Customer, Message, Priority, SLAPolicy, Ticket

logger = logging.getLogger(__name__)

# Before the classifier has set a priority, deadlines assume this one.
INTAKE_PRIORITY = Priority.MEDIUM

# Used when no SLAPolicy row matches: (first response, resolution) in minutes.
FALLBACK_SLA_MINUTES = (8 * 60, 5 * 24 * 60)


@dataclass(frozen=True)
class CustomerData:
    """A customer as a sender describes it; None means "not sent: keep what we have"."""

    external_id: str
    name: str
    email: str | None = None
    company: str | None = None
    tier: str | None = None


@dataclass(frozen=True)
class TicketData:
    source: str
    external_id: str
    subject: str
    body: str
    channel: str
    customer: CustomerData
    metadata: dict


def _announce(type: str, ticket: Ticket, **data) -> None:
    """Write the event of a change of ``ticket`` to the outbox (its payloads are documented in
    README "Outbound events"). Call in the change's transaction, after its writes."""
    event_emit(
        type=type,
        subject=("ticket", ticket.pk),
        payload={"ticket_id": ticket.pk, "status": ticket.status, **data},
    )


def _person(user) -> dict | None:
    return {"id": user.pk, "username": user.get_username()} if user is not None else None


def sla_deadlines(*, priority: str, tier: str, start: datetime) -> tuple[datetime, datetime]:
    """(first response due, resolution due) for a ticket opened at ``start``."""
    minutes = (
        SLAPolicy.objects.filter(priority=priority, tier=tier)
        .values_list("first_response_minutes", "resolution_minutes")
        .first()
    )
    first, resolution = minutes or FALLBACK_SLA_MINUTES
    return start + timedelta(minutes=first), start + timedelta(minutes=resolution)


OPTIONAL_CUSTOMER_FIELDS = ("email", "company", "tier")


def customer_upsert(*, data: CustomerData) -> Customer:
    """Insert or update a customer by external id in one statement (safe under concurrency).

    Fields the sender left out keep their stored values, so a delivery without an email
    never erases the one we have. VIP flag and support entitlement are managed by the team,
    never by the webhook.
    """
    sent = {name: getattr(data, name) for name in OPTIONAL_CUSTOMER_FIELDS if getattr(data, name) is not None}
    (customer,) = Customer.objects.bulk_create(
        [Customer(external_id=data.external_id, name=data.name, **sent)],
        update_conflicts=True,
        unique_fields=["external_id"],
        update_fields=["name", *sent, "updated_at"],
    )
    if len(sent) < len(OPTIONAL_CUSTOMER_FIELDS):
        customer.refresh_from_db()  # the object holds defaults where the row kept its values
    return customer


SUBJECT_FROM_BODY_CHARS = 80
NO_SUBJECT = "(no subject)"


def subject_from_body(body: str) -> str:
    """A subject for a ticket sent without one: the body's first line with text, its
    whitespace collapsed, cut after a whole word to at most 80 characters."""
    line = next((" ".join(line.split()) for line in body.splitlines() if line.strip()), "")
    if len(line) <= SUBJECT_FROM_BODY_CHARS:
        return line or NO_SUBJECT
    cut = line[: SUBJECT_FROM_BODY_CHARS - 1]
    if line[len(cut)] != " " and " " in cut:  # not in the middle of a word
        cut = cut.rsplit(" ", 1)[0]
    return cut.rstrip() + "…"


def ticket_create(*, data: TicketData, correlation_id: str | None = None) -> tuple[Ticket, bool]:
    """Create a ticket with its first customer message, or find the one already delivered.

    Idempotent on (source, external_id) through the database's unique constraint, so
    concurrent duplicate deliveries create exactly one ticket. Returns (ticket, created).
    The processing task is enqueued only once the transaction has committed. The
    correlation id (a new one when not given) follows the ticket through every task. A
    ticket without a subject gets one from its body (``subject_from_body``).
    """
    correlation_id = correlation_id or new_correlation_id()
    with transaction.atomic():
        customer = customer_upsert(data=data.customer)
        now = timezone.now()
        first_due, resolution_due = sla_deadlines(priority=INTAKE_PRIORITY, tier=customer.tier, start=now)
        try:
            with transaction.atomic():
                ticket = Ticket.objects.create(
                    source=data.source,
                    external_id=data.external_id,
                    customer=customer,
                    subject=data.subject.strip() or subject_from_body(data.body),
                    body=data.body,
                    channel=data.channel,
                    metadata=data.metadata,
                    first_response_due=first_due,
                    resolution_due=resolution_due,
                    correlation_id=correlation_id,
                    created_at=now,
                )
        except IntegrityError:
            existing = Ticket.objects.filter(source=data.source, external_id=data.external_id).first()
            if existing is None:
                raise
            logger.info("duplicate delivery", extra={"ticket_id": existing.pk})
            return existing, False
        Message.objects.create(
            ticket=ticket,
            kind=Message.Kind.EXTERNAL,
            sender_kind=Message.SenderKind.CUSTOMER,
            sender_id=customer.external_id,
            content=data.body,
            metadata={"channel": data.channel},
            created_at=now,
        )
        _announce(
            EventType.TICKET_CREATED,
            ticket,
            source=ticket.source,
            external_id=ticket.external_id,
            channel=ticket.channel,
            subject=ticket.subject,
            customer={"external_id": customer.external_id, "tier": customer.tier},
            created_at=now,
            first_response_due=ticket.first_response_due,
            resolution_due=ticket.resolution_due,
        )
        # robust: the ticket is stored even if the broker is down right now; the intake
        # sweep (tickets.tasks.intake_sweep) enqueues it later.
        transaction.on_commit(
            lambda: signals.ticket_received.send(
                sender=Ticket, ticket_id=ticket.pk, correlation_id=correlation_id
            ),
            robust=True,
        )
    logger.info("ticket created", extra={"ticket_id": ticket.pk, "source": data.source})
    return ticket, True


def ticket_advance_stage(*, ticket_id: int, from_stage: str, to_stage: str) -> bool:
    """Move a ticket to the next workflow stage if it is still at ``from_stage``.

    A conditional UPDATE, so two workers racing on one ticket advance it once.
    """
    updated = Ticket.objects.filter(pk=ticket_id, stage=from_stage).update(
        stage=to_stage, updated_at=timezone.now()
    )
    return updated == 1


def ticket_triage_set(*, ticket: Ticket, category: str | None = None, priority: str | None = None) -> None:
    """Set a ticket's category and/or priority; a new priority moves the SLA deadlines.

    The deadlines keep the ticket's creation time as their start, so a ticket that turns
    out to be CRITICAL is due as if it had been CRITICAL from the first minute.
    Call inside a transaction holding the ticket row (``select_for_update``).
    """
    fields = []
    if category is not None and category != ticket.category:
        ticket.category = category
        fields.append("category")
    if priority is not None and priority != ticket.priority:
        ticket.priority = priority
        ticket.first_response_due, ticket.resolution_due = sla_deadlines(
            priority=priority, tier=ticket.customer.tier, start=ticket.created_at
        )
        fields += ["priority", "first_response_due", "resolution_due"]
    if fields:
        with transaction.atomic(savepoint=False):
            ticket.save(update_fields=[*fields, "updated_at"])
            _announce(
                EventType.TICKET_TRIAGED,
                ticket,
                category=ticket.category,
                priority=ticket.priority,
                changed=[field for field in ("category", "priority") if field in fields],
                first_response_due=ticket.first_response_due,
                resolution_due=ticket.resolution_due,
            )


def ticket_escalate(*, ticket: Ticket, team: str, note: str, sender_id: str) -> None:
    """Mark a ticket escalated to ``team`` and say so in an internal note."""
    ticket.status = Ticket.Status.ESCALATED
    ticket.team = team
    fields = ["status", "team", "updated_at"]
    if ticket.escalated_at is None:
        ticket.escalated_at = timezone.now()
        fields.append("escalated_at")
    with transaction.atomic(savepoint=False):
        ticket.save(update_fields=fields)
        _announce(EventType.TICKET_ESCALATED, ticket, team=team, escalated_at=ticket.escalated_at)
        message_post(
            ticket=ticket,
            kind=Message.Kind.INTERNAL,
            sender_kind=Message.SenderKind.SYSTEM,
            sender_id=sender_id,
            content=note,
        )


def message_post(*, ticket: Ticket, kind: str, sender_kind: str, sender_id: str, content: str) -> Message:
    """Add a message to a ticket's conversation. A message to the customer is delivered through
    the ticket's channel (``tickets.delivery``): written with its delivery state, in one
    transaction; the first one delivered is the ticket's first response. It is announced
    (``ticket.message.created``) in the same transaction."""
    now = timezone.now()
    to_customer = kind == Message.Kind.EXTERNAL and sender_kind != Message.SenderKind.CUSTOMER
    with transaction.atomic(savepoint=False):
        message = Message.objects.create(
            ticket=ticket,
            kind=kind,
            sender_kind=sender_kind,
            sender_id=sender_id,
            content=content,
            created_at=now,
            **(delivery.outgoing_fields(ticket=ticket, now=now) if to_customer else {}),
        )
        if to_customer:
            if ticket.status == Ticket.Status.NEW:
                ticket.status = Ticket.Status.OPEN
                ticket.save(update_fields=["status", "updated_at"])
            delivery.message_queued(message=message)
            _announce(
                EventType.TICKET_MESSAGE_CREATED,
                ticket,
                message={
                    "id": message.pk,
                    "sender_kind": sender_kind,
                    "sender_id": sender_id,
                    "content": content,
                    "delivery": message.delivery,
                    "created_at": now,
                },
            )
    return message


def _at_risk_cutoff(deadline: str, now: datetime, fraction: float) -> ExpressionWrapper:
    """now + fraction × (deadline − created): a deadline at or before this is at risk."""
    window = ExpressionWrapper(F(deadline) - F("created_at"), output_field=DurationField())
    return ExpressionWrapper(Value(now) + window * fraction, output_field=DateTimeField())


def sla_refresh(*, now: datetime | None = None) -> int:
    """Recompute the SLA state of every unresolved ticket; returns how many changed.

    A deadline is at risk when less than ``CSAI_SLA_AT_RISK_FRACTION`` of its window is
    left, breached once it has passed. The first-response deadline counts until a reply has
    been delivered (a reply stored but not yet sent, or failed, does not stop it); the
    resolution deadline until the ticket is resolved.
    """
    now = now or timezone.now()
    fraction = settings.CSAI_SLA_AT_RISK_FRACTION

    awaiting_response = Q(first_response_at__isnull=True)
    breached = Q(resolution_due__lte=now) | (awaiting_response & Q(first_response_due__lte=now))
    at_risk = Q(resolution_due__lte=_at_risk_cutoff("resolution_due", now, fraction)) | (
        awaiting_response & Q(first_response_due__lte=_at_risk_cutoff("first_response_due", now, fraction))
    )
    new_state = Case(
        When(breached, then=Value(Ticket.SLAState.BREACHED)),
        When(at_risk, then=Value(Ticket.SLAState.AT_RISK)),
        default=Value(Ticket.SLAState.ON_TIME),
    )
    open_tickets = Ticket.objects.filter(resolved_at__isnull=True)
    changed = open_tickets.annotate(new_state=new_state).exclude(sla_state=F("new_state"))
    return Ticket.objects.filter(pk__in=changed.values("pk")).update(sla_state=new_state)


def _resolver(actor, by_ai: bool) -> dict | None:
    if actor is not None:
        return {"kind": "person", **_person(actor)}
    return {"kind": "ai"} if by_ai else None


def _resolved_by(actor, by_ai: bool) -> str:
    if actor is not None:
        return Ticket.Resolver.PERSON
    return Ticket.Resolver.AI if by_ai else ""


RESOLUTION_FIELDS = [
    "status",
    "resolved_at",
    "resolved_by",
    "resolver",
    "assumed_resolution_at",
    "updated_at",
]


def ticket_resolve(*, ticket: Ticket, actor=None, by_ai: bool = False, at: datetime | None = None) -> None:
    """The customer's problem is solved: the resolution deadline stops counting.

    ``actor``: the person who resolved it; ``by_ai``: the AI did; neither: not known. Stored
    on the ticket (``resolved_by``, ``resolver``) and announced in ``ticket.resolved``.
    """
    ticket.status = Ticket.Status.RESOLVED
    ticket.resolved_at = at or timezone.now()
    ticket.resolved_by = _resolved_by(actor, by_ai)
    ticket.resolver = actor
    ticket.assumed_resolution_at = None
    with transaction.atomic(savepoint=False):
        ticket.save(update_fields=RESOLUTION_FIELDS)
        _announce(
            EventType.TICKET_RESOLVED,
            ticket,
            resolved_at=ticket.resolved_at,
            resolved_by=_resolver(actor, by_ai),
        )
        signals.ticket_resolved.send(sender=Ticket, ticket=ticket)


def ticket_close(*, ticket: Ticket, actor=None, by_ai: bool = False, at: datetime | None = None) -> None:
    """Closed for good; a ticket closed without being resolved counts as resolved now (and
    is announced as resolved, with status "closed"), by whoever closed it."""
    newly_resolved = ticket.resolved_at is None
    ticket.status = Ticket.Status.CLOSED
    ticket.closed_at = at or timezone.now()
    if newly_resolved:
        ticket.resolved_at = ticket.closed_at
        ticket.resolved_by = _resolved_by(actor, by_ai)
        ticket.resolver = actor
    ticket.assumed_resolution_at = None
    with transaction.atomic(savepoint=False):
        ticket.save(update_fields=[*RESOLUTION_FIELDS, "closed_at"])
        if newly_resolved:
            _announce(
                EventType.TICKET_RESOLVED,
                ticket,
                resolved_at=ticket.resolved_at,
                resolved_by=_resolver(actor, by_ai),
            )
            signals.ticket_resolved.send(sender=Ticket, ticket=ticket)


def ticket_reopen(*, ticket: Ticket, actor=None, by_customer: bool = False) -> None:
    """Open a ticket again (after it was resolved, closed or escalated): by ``actor`` (a
    person), by the customer writing again (``by_customer``), or by whoever (neither).

    A resolution undone no longer counts for whoever resolved it; ``reopened_count`` keeps
    that it was (the reopen rate)."""
    previous = ticket.status
    if ticket.resolved_at is not None:
        ticket.reopened_count += 1
    ticket.status = Ticket.Status.OPEN
    ticket.resolved_at = None
    ticket.resolved_by = ""
    ticket.resolver = None
    ticket.closed_at = None
    ticket.assumed_resolution_at = None
    with transaction.atomic(savepoint=False):
        ticket.save(update_fields=[*RESOLUTION_FIELDS, "closed_at", "reopened_count"])
        reopened_by = {"kind": "customer"} if by_customer else None
        if actor is not None:
            reopened_by = {"kind": "person", **_person(actor)}
        _announce(EventType.TICKET_REOPENED, ticket, previous_status=previous, reopened_by=reopened_by)


def ticket_assign(*, ticket: Ticket, team: str, assignee) -> None:
    """Hand a ticket to a team and, optionally, one member of it (``assignee`` None: nobody)."""
    ticket.team = team
    ticket.assignee = assignee
    with transaction.atomic(savepoint=False):
        ticket.save(update_fields=["team", "assignee", "updated_at"])
        _announce(EventType.TICKET_ASSIGNED, ticket, team=team, assignee=_person(assignee))


def ticket_await_customer(*, ticket: Ticket) -> None:
    """The ticket waits for the customer's answer."""
    ticket.status = Ticket.Status.PENDING_CUSTOMER
    ticket.save(update_fields=["status", "updated_at"])


# Who may still write after a reply that may have solved the problem.
AWAITING = (Ticket.Status.NEW, Ticket.Status.OPEN, Ticket.Status.PENDING_CUSTOMER)
SWEEP_BATCH = 200


def ticket_await_resolution(*, ticket_id: int, at: datetime) -> bool:
    """A reply that may solve the customer's problem went out: the ticket waits for the
    customer, and is resolved by the AI at ``at`` unless they write again (``assumed_resolution_at``).

    A conditional UPDATE: a ticket resolved, closed or escalated meanwhile is left alone."""
    return bool(
        Ticket.objects.filter(pk=ticket_id, status__in=AWAITING).update(
            status=Ticket.Status.PENDING_CUSTOMER, assumed_resolution_at=at, updated_at=timezone.now()
        )
    )


def ticket_resolution_unassume(*, ticket_id: int) -> bool:
    """No assumed resolution any more: someone is working on the ticket again."""
    return bool(
        Ticket.objects.filter(pk=ticket_id, assumed_resolution_at__isnull=False).update(
            assumed_resolution_at=None, updated_at=timezone.now()
        )
    )


def tickets_resolve_assumed(*, now: datetime | None = None, limit: int = SWEEP_BATCH) -> int:
    """Resolve, by the AI, the tickets whose quiet period after an AI reply has passed;
    returns how many. Resolved at ``assumed_resolution_at`` (when the quiet period ended).

    Each ticket is taken with ``select_for_update(skip_locked=True)`` and checked again under
    the lock, so two sweeps, or a sweep racing a customer's follow-up (which holds the row
    and clears ``assumed_resolution_at``), resolve it at most once."""
    now = now or timezone.now()
    due = Q(status=Ticket.Status.PENDING_CUSTOMER, assumed_resolution_at__lte=now)
    done = 0
    with transaction.atomic():
        for ticket in (
            Ticket.objects.select_for_update(skip_locked=True)
            .filter(due)
            .order_by("assumed_resolution_at")[:limit]
        ):
            ticket_resolve(ticket=ticket, by_ai=True, at=ticket.assumed_resolution_at)
            done += 1
    if done:
        logger.info("assumed resolutions", extra={"resolved": done})
    return done


def tickets_close_resolved(*, now: datetime | None = None, limit: int = SWEEP_BATCH) -> int:
    """Close the tickets resolved more than ``CSAI_CLOSE_AFTER_DAYS`` ago; returns how many.
    Who resolved them stays as it was. Locked with ``skip_locked`` like the resolution sweep."""
    now = now or timezone.now()
    cutoff = now - timedelta(days=settings.CSAI_CLOSE_AFTER_DAYS)
    done = 0
    with transaction.atomic():
        for ticket in (
            Ticket.objects.select_for_update(skip_locked=True)
            .filter(status=Ticket.Status.RESOLVED, resolved_at__lte=cutoff)
            .order_by("resolved_at")[:limit]
        ):
            ticket_close(ticket=ticket, at=now)
            done += 1
    return done


def notice_post(*, ticket: Ticket, subject: str, content: str, link: dict | None = None) -> Message | None:
    """A mail to the customer outside the conversation (the satisfaction survey), delivered
    like a reply — once, with retries — whatever the ticket's channel. ``link``: ``{"url",
    "text"}`` shown as a button. None when the customer has no email address (nothing to send).
    Not announced as a message: integrators' timelines hold the conversation only."""
    if not ticket.customer.email:
        return None
    now = timezone.now()
    with transaction.atomic(savepoint=False):
        message = Message.objects.create(
            ticket=ticket,
            kind=Message.Kind.NOTICE,
            sender_kind=Message.SenderKind.SYSTEM,
            sender_id="csai",
            content=content,
            metadata={"subject": subject, **({"link": link} if link else {})},
            created_at=now,
            **delivery.outgoing_fields(ticket=ticket, now=now, mail=True),
        )
        delivery.message_queued(message=message)
    return message

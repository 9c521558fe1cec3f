"""Every write of the outcomes app: the AI's assumed resolution, satisfaction surveys and
their answers, imported CSAT history."""

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from agents.models import Strategy
from agents.selectors import ticket_strategy
from csai.errors import ApplicationError
from events.models import EventType
from events.services import event_emit
from outcomes.day_figures import day_figures_rescan
from outcomes.links import SURVEY
from outcomes.models import Survey
from tickets.models import Message, Ticket
from tickets.services import notice_post, ticket_await_resolution, ticket_resolution_unassume

logger = logging.getLogger(__name__)

# The strategies whose reply is meant to solve the problem: delivered, the customer's silence
# resolves the ticket.
RESOLVING_STRATEGIES = (Strategy.AUTOMATED_RESOLUTION, Strategy.TEMPLATE_RESPONSE)
COMMENT_MAX_CHARS = 2000


def reply_delivered_record(*, message: Message, delivered_at: datetime) -> None:
    """A reply reached the customer. The AI's own reply under a resolving strategy starts the
    quiet period (``CSAI_ASSUMED_RESOLUTION_HOURS``) after which the AI resolved the ticket;
    any other reply (a person's, a question) ends a quiet period under way: the ticket is
    someone's work again."""
    ai_resolving = (
        message.sender_kind == Message.SenderKind.AI_AGENT
        and ticket_strategy(ticket_id=message.ticket_id) in RESOLVING_STRATEGIES
    )
    if ai_resolving:
        at = delivered_at + timedelta(hours=settings.CSAI_ASSUMED_RESOLUTION_HOURS)
        ticket_await_resolution(ticket_id=message.ticket_id, at=at)
    else:
        ticket_resolution_unassume(ticket_id=message.ticket_id)


SURVEY_SUBJECT = "How did we do? {subject}"
SURVEY_TEXT = (
    "Hello {name},\n\n"
    'Your request "{subject}" is solved. Would you tell us how we did? It takes one click, '
    "and the link works for {days} days.\n\n"
    "If the problem is not solved after all, just reply to this mail."
)


def survey_send(*, ticket: Ticket) -> Survey | None:
    """Ask the customer how we did about this resolution: a survey, and a mail with its link
    through the outgoing-message delivery (a notice: once, with retries, never a reply on the
    conversation). None when the customer has no email address. Call in the resolving
    transaction (``signals.ticket_resolved``)."""
    customer = ticket.customer
    if not customer.email:
        return None
    now = timezone.now()
    days = settings.CSAI_CSAT_LINK_DAYS
    with transaction.atomic(savepoint=False):
        survey = Survey.objects.create(
            ticket=ticket, resolved_by=ticket.resolved_by, sent_at=now, expires_at=now + timedelta(days=days)
        )
        notice_post(
            ticket=ticket,
            subject=SURVEY_SUBJECT.format(subject=ticket.subject),
            content=SURVEY_TEXT.format(name=customer.name, subject=ticket.subject, days=days),
            link={"url": SURVEY.url(survey.pk), "text": "Rate our help"},
        )
    return survey


def survey_answer(*, survey_id: int, score: int, comment: str = "", now: datetime | None = None) -> Survey:
    """Store the customer's answer, once, and announce it (``ticket.csat``).

    A conditional UPDATE (``answered_at`` still null, not expired), so two submissions racing
    store one answer. Raises ``ApplicationError``: 404 no such survey, 409 already answered,
    410 expired; 400 a score outside 1–5."""
    if not isinstance(score, int) or not 1 <= score <= 5:
        raise ApplicationError("Choose a score from 1 to 5.")
    now = now or timezone.now()
    comment = comment.strip()[:COMMENT_MAX_CHARS]
    with transaction.atomic():
        stored = Survey.objects.filter(pk=survey_id, answered_at__isnull=True, expires_at__gt=now).update(
            score=score, comment=comment, answered_at=now
        )
        survey = Survey.objects.select_related("ticket").filter(pk=survey_id).first()
        if survey is None:
            raise ApplicationError("There is no such survey.", status_code=404)
        if not stored:
            survey_refusal(survey=survey, now=now)
        event_emit(
            type=EventType.TICKET_CSAT,
            subject=("ticket", survey.ticket_id),
            payload={
                "ticket_id": survey.ticket_id,
                "status": survey.ticket.status,
                "survey_id": survey.pk,
                "score": score,
                "comment": comment,
                "resolved_by": survey.resolved_by,
                "answered_at": now,
            },
        )
    logger.info("satisfaction answered", extra={"ticket_id": survey.ticket_id, "score": score})
    return survey


def survey_refusal(*, survey: Survey, now: datetime) -> None:
    """Raise why ``survey`` takes no answer now (409 answered, 410 expired); return if it does."""
    if survey.answered_at is not None:
        raise ApplicationError("This survey has been answered already. Thank you!", status_code=409)
    if survey.expires_at <= now:
        raise ApplicationError("This survey's link has expired.", status_code=410)


# --- imported history ------------------------------------------------------------------------


@dataclass(frozen=True)
class ImportedAnswer:
    """One valid row of a CSAT history file."""

    line: int
    ticket_id: int
    score: int
    comment: str
    answered_at: datetime
    resolved_by: str


@dataclass(frozen=True)
class ImportResult:
    created: int
    updated: int


def surveys_import(*, answers: list[ImportedAnswer]) -> ImportResult:
    """Store imported answers as surveys (source "import") in one transaction. Idempotent: an
    answer already imported (same ticket and time) is updated, not added again. Imported
    answers announce no event: they are history."""
    created = updated = 0
    with transaction.atomic():
        for answer in answers:
            _, new = Survey.objects.update_or_create(
                ticket_id=answer.ticket_id,
                answered_at=answer.answered_at,
                source=Survey.Source.IMPORT,
                defaults={
                    "score": answer.score,
                    "comment": answer.comment,
                    "resolved_by": answer.resolved_by,
                    "sent_at": answer.answered_at,
                    "expires_at": answer.answered_at,
                },
            )
            created, updated = created + new, updated + (not new)
        if answers:  # stamped in the past: the stored days of the dashboard are looked at again
            day_figures_rescan(since=min(answer.answered_at for answer in answers))
    return ImportResult(created=created, updated=updated)

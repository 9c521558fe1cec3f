"""Reads of tickets, shaped for the API and the console."""

from datetime import timedelta
from pathlib import Path

from django.apps import apps
from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db.models import OuterRef, Q, QuerySet, Subquery
from django.shortcuts import get_object_or_404
from django.utils import timezone

from tickets.models import Delivery, Message, Ticket

VIEW_PERMISSION = "tickets.view_ticket"


def ticket_list(*, filters: dict) -> QuerySet[Ticket]:
    """Newest first, with customer and messages loaded in two extra queries per page.
    ``filters``: field values, and ``updated_since`` (changed at or after)."""
    filters = dict(filters)
    if "updated_since" in filters:
        filters["updated_at__gte"] = filters.pop("updated_since")
    return (
        _with_csat(Ticket.objects.filter(**filters))
        .select_related("customer", "assignee", "resolver")
        .prefetch_related("messages")
        .order_by("-created_at", "-id")
    )


def _with_csat(tickets: QuerySet[Ticket]) -> QuerySet[Ticket]:
    """Each ticket with the customer's latest satisfaction answer (``csat_score`` 1–5,
    ``csat_comment``, ``csat_answered_at``; None when unanswered), in the same query.

    The surveys are the outcomes app's; it depends on tickets, so they are named, not imported."""
    survey = apps.get_model("outcomes", "Survey")
    latest = survey.objects.filter(ticket=OuterRef("pk"), answered_at__isnull=False).order_by(
        "-answered_at", "-id"
    )
    return tickets.annotate(
        csat_score=Subquery(latest.values("score")[:1]),
        csat_comment=Subquery(latest.values("comment")[:1]),
        csat_answered_at=Subquery(latest.values("answered_at")[:1]),
    )


def tickets_stuck_in_intake(*, older_than: timedelta, limit: int) -> list[tuple[int, str]]:
    """(id, correlation id) of tickets still at "trigger" after ``older_than``: their intake
    task was never enqueued (broker down at commit) or was lost."""
    cutoff = timezone.now() - older_than
    stuck = Ticket.objects.filter(stage=Ticket.Stage.TRIGGER, created_at__lt=cutoff).order_by("created_at")
    return list(stuck.values_list("id", "correlation_id")[:limit])


def get_ticket_for_user(user, ticket_id: int) -> Ticket:
    """The ticket if ``user`` may see it: 404 when it does not exist, 403 without the role."""
    if not user.has_perm(VIEW_PERMISSION):
        raise PermissionDenied
    return get_object_or_404(ticket_list(filters={}), pk=ticket_id)


def message_mail_file(*, message: Message) -> Path | None:
    """The .eml file `make run`'s SMTP sink (csai.mailsink) wrote for ``message``, if any."""
    if not (settings.CSAI_MAIL_SINK_DIR and message.email_message_id):
        return None
    from csai.mailsink import eml_name

    path = Path(settings.CSAI_MAIL_SINK_DIR) / eml_name(message.email_message_id)
    return path if path.is_file() else None


def mail_thread(*, source: str, external_id: str) -> list[str]:
    """The Message-IDs of a ticket's mail thread as its customer's mail client holds it, oldest
    first, ending at our last delivered reply: the customer's own mails and our replies that
    were sent. Empty when we never mailed the customer."""
    ids = list(
        Message.objects.filter(ticket__source=source, ticket__external_id=external_id)
        .exclude(email_message_id="")
        .filter(Q(sender_kind=Message.SenderKind.CUSTOMER) | Q(delivery=Delivery.SENT))
        .order_by("created_at", "pk")
        .values_list("email_message_id", "sender_kind")
    )
    while ids and ids[-1][1] == Message.SenderKind.CUSTOMER:
        ids.pop()
    return [message_id for message_id, _ in ids]

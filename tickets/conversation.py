"""A customer writing again: follow-up messages on a ticket, and what they do to it.

The writes of the conversation (part of the app's services): ``message_receive`` stores a
customer's follow-up once, reopens or continues its ticket, and announces a new turn
(``signals.customer_wrote``) for the agents — unless the message is an auto-reply, which is
kept but answered by nobody, or says the problem is solved (``tickets.solved``), which
resolves the ticket instead. ``ticket_confirm_solved`` is the same resolution from the link
in a reply.
"""

import logging
import re
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.utils import timezone

from csai.errors import ApplicationError
from tickets import signals
from tickets.models import Delivery, Message, Ticket
from tickets.services import CustomerData, TicketData, ticket_create, ticket_reopen, ticket_resolve
from tickets.solved import reads_as_solved

logger = logging.getLogger(__name__)

CLOSED = (Ticket.Status.RESOLVED, Ticket.Status.CLOSED)

# Headers that mark a mail written by a machine (RFC 3834 and what mail systems use).
_AUTO_HEADERS = {
    "auto-submitted": lambda v: v.strip().lower() != "no",
    "x-autoreply": lambda v: bool(v.strip()),
    "x-autorespond": lambda v: bool(v.strip()),
    "x-auto-response-suppress": lambda v: "all" in v.lower() or "oof" in v.lower(),
    "precedence": lambda v: v.strip().lower() in ("bulk", "auto_reply", "junk", "list"),
}
_OUT_OF_OFFICE = re.compile(
    r"\b(out of (the )?office|auto(matic)?[- ]?reply|i am (currently )?away|on (annual )?leave|"
    r"abwesenheitsnotiz|absence du bureau)\b",
    re.IGNORECASE,
)


def auto_reply_reason(*, headers: dict[str, str], content: str, sender_email: str = "") -> str:
    """Why a message was written by a machine, not a person; empty when it was not."""
    lowered = {name.lower(): str(value) for name, value in headers.items()}
    for name, is_auto in _AUTO_HEADERS.items():
        if name in lowered and is_auto(lowered[name]):
            return f"{name}: {lowered[name]}"
    if sender_email and sender_email.strip().lower() == settings.DEFAULT_FROM_EMAIL.strip().lower():
        return "sent from our own outbound address"
    if _OUT_OF_OFFICE.search(content[:500]) or _OUT_OF_OFFICE.search(lowered.get("subject", "")):
        return "an out-of-office text"
    return ""


@dataclass(frozen=True)
class FollowUpData:
    """A customer's follow-up as the messages webhook takes it."""

    source: str
    external_id: str  # the message's own id at the sender
    content: str
    ticket_external_id: str = ""  # empty: found from the email headers
    sender_email: str = ""
    sender_name: str = ""
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Received:
    message: Message
    ticket: Ticket
    created: bool  # False: a redelivery, nothing stored
    # "continued", "reopened", "new_ticket", "auto_reply", "duplicate", "solved" (it said the
    # problem is solved: the ticket is resolved) or "thanks" (it said so on a resolved ticket)
    outcome: str


def _message_ids(value: str) -> list[str]:
    return re.findall(r"<[^<>\s]+>", value or "")


def ticket_for_mail(*, source: str, headers: dict[str, str]) -> Ticket | None:
    """The ticket an emailed answer belongs to, by the Message-IDs it replies to (In-Reply-To
    first, then References, newest first)."""
    lowered = {name.lower(): value for name, value in headers.items()}
    ids = _message_ids(lowered.get("in-reply-to", "")) + _message_ids(lowered.get("references", ""))[::-1]
    for message_id in ids:
        ticket_id = (
            Message.objects.filter(email_message_id=message_id, ticket__source=source)
            .values_list("ticket_id", flat=True)
            .first()
        )
        if ticket_id is not None:
            return Ticket.objects.get(pk=ticket_id)
    return None


def message_receive(*, data: FollowUpData) -> Received:
    """Store a customer's follow-up once and decide what it does to its ticket.

    The ticket is found by (source, ticket external id), or else by the email it answers.
    On a ticket waiting for the customer, work resumes (and the AI's assumed resolution is
    off); a resolved one is reopened within ``CSAI_REOPEN_DAYS`` (no longer counting for
    whoever resolved it); after that, or on a closed ticket, a new ticket continues it. A
    message that reads as "solved, thanks" resolves an open ticket (``ticket_confirm_solved``)
    and leaves a resolved one as it is, starting no turn. An auto-reply is kept on the ticket
    and changes nothing. A redelivery (the same message external id on the ticket) stores
    nothing. Raises ``ApplicationError`` (404) for an unknown ticket, storing nothing.
    """
    with transaction.atomic():
        ticket = _ticket_of(data)
        existing = Message.objects.filter(ticket=ticket, external_id=data.external_id).first()
        if existing is not None:
            return Received(existing, ticket, created=False, outcome="duplicate")
        auto = auto_reply_reason(headers=data.headers, content=data.content, sender_email=data.sender_email)
        solved = not auto and ticket.status != Ticket.Status.ESCALATED and reads_as_solved(data.content)
        # "Thanks, solved" on a resolved or closed ticket stays there: no new ticket for it.
        if not auto and not (solved and ticket.status in CLOSED) and _beyond_reopen(ticket):
            return _continue_on_a_new_ticket(ticket, data)
        try:
            with transaction.atomic():
                message = _store(ticket, data, auto_reply=auto, says_solved=solved)
        except IntegrityError:  # the same message delivered concurrently
            message = Message.objects.get(ticket=ticket, external_id=data.external_id)
            return Received(message, ticket, created=False, outcome="duplicate")
        if auto:
            logger.info("auto-reply kept, not answered", extra={"ticket_id": ticket.pk, "why": auto})
            return Received(message, ticket, created=True, outcome="auto_reply")
        if solved:
            outcome = "thanks" if ticket.status in CLOSED else "solved"
            if outcome == "solved":
                _resolve_as_solved(ticket, reply=_latest_reply(ticket))
            logger.info("the customer says it is solved", extra={"ticket_id": ticket.pk, "outcome": outcome})
            return Received(message, ticket, created=True, outcome=outcome)
        outcome = "continued"
        if ticket.status in CLOSED:
            ticket_reopen(ticket=ticket, by_customer=True)
            outcome = "reopened"
        elif ticket.status == Ticket.Status.PENDING_CUSTOMER or ticket.assumed_resolution_at:
            # The customer wrote: the AI's reply did not (yet) resolve it.
            if ticket.status == Ticket.Status.PENDING_CUSTOMER:
                ticket.status = Ticket.Status.OPEN
            ticket.assumed_resolution_at = None
            ticket.save(update_fields=["status", "assumed_resolution_at", "updated_at"])
        transaction.on_commit(
            lambda: signals.customer_wrote.send(sender=Ticket, ticket_id=ticket.pk, message_id=message.pk),
            robust=True,  # the turn sweep (agents.tasks.pipeline_sweep) starts it otherwise
        )
    logger.info("follow-up received", extra={"ticket_id": ticket.pk, "outcome": outcome})
    return Received(message, ticket, created=True, outcome=outcome)


def ticket_confirm_solved(*, message_id: int) -> str:
    """The customer followed "Yes, this solved my problem" in the reply ``message_id``: the
    ticket is resolved by whoever wrote that reply (the AI, or the person). Returns
    "resolved", or "already" when it was resolved or closed before (nothing changes)."""
    with transaction.atomic():
        reply = Message.objects.select_related("ticket").get(pk=message_id)
        ticket = Ticket.objects.select_for_update().get(pk=reply.ticket_id)
        if ticket.status in CLOSED:
            return "already"
        _resolve_as_solved(ticket, reply=reply)
    logger.info("the customer confirmed the reply solved it", extra={"ticket_id": ticket.pk})
    return "resolved"


def _latest_reply(ticket: Ticket) -> Message | None:
    """The latest reply to the customer that went out (or is on its way)."""
    return (
        ticket.messages.filter(kind=Message.Kind.EXTERNAL)
        .exclude(sender_kind=Message.SenderKind.CUSTOMER)
        .exclude(delivery=Delivery.FAILED)
        .order_by("-created_at", "-id")
        .first()
    )


def _resolve_as_solved(ticket: Ticket, *, reply: Message | None) -> None:
    """Resolve ``ticket`` (locked) by the author of the reply that solved it: the AI for the
    AI's reply, the person for theirs; not known without a reply (the customer solved it)."""
    actor, by_ai = None, False
    if reply is not None and reply.sender_kind == Message.SenderKind.AI_AGENT:
        by_ai = True
    elif reply is not None and reply.sender_kind == Message.SenderKind.CS_AGENT and reply.sender_id.isdigit():
        actor = get_user_model().objects.filter(pk=int(reply.sender_id)).first()
    ticket_resolve(ticket=ticket, actor=actor, by_ai=by_ai)


def _ticket_of(data: FollowUpData) -> Ticket:
    ticket = None
    if data.ticket_external_id:
        ticket = Ticket.objects.filter(source=data.source, external_id=data.ticket_external_id).first()
    elif data.headers:
        ticket = ticket_for_mail(source=data.source, headers=data.headers)
    if ticket is None:
        raise ApplicationError("No such ticket: nothing was stored.", status_code=404)
    return Ticket.objects.select_for_update().select_related("customer").get(pk=ticket.pk)


def _beyond_reopen(ticket: Ticket) -> bool:
    """Too late to reopen: a closed ticket, or one resolved longer ago than the reopen window."""
    if ticket.status == Ticket.Status.CLOSED:
        return True
    window = timedelta(days=settings.CSAI_REOPEN_DAYS)
    return ticket.status == Ticket.Status.RESOLVED and (
        ticket.resolved_at is None or ticket.resolved_at < timezone.now() - window
    )


def _store(ticket: Ticket, data: FollowUpData, *, auto_reply: str, says_solved: bool = False) -> Message:
    headers = {name.lower(): value for name, value in data.headers.items()}
    message_id = next(iter(_message_ids(headers.get("message-id", ""))), "")
    metadata = {"headers": data.headers} if data.headers else {}
    if auto_reply:
        metadata["auto_reply"] = auto_reply
    if says_solved:
        metadata["says_solved"] = True  # tickets.models.NOT_ANSWERED: no turn answers it
    return Message.objects.create(
        ticket=ticket,
        kind=Message.Kind.EXTERNAL,
        sender_kind=Message.SenderKind.CUSTOMER,
        sender_id=ticket.customer.external_id,
        content=data.content,
        external_id=data.external_id,
        email_message_id=message_id,
        metadata=metadata,
        created_at=timezone.now(),
    )


def _continue_on_a_new_ticket(previous: Ticket, data: FollowUpData) -> Received:
    """A new ticket for the customer's new message, linked to the one it continues."""
    customer = previous.customer
    subject = previous.subject if previous.subject.lower().startswith("re:") else f"Re: {previous.subject}"
    ticket, created = ticket_create(
        data=TicketData(
            source=previous.source,
            external_id=f"{previous.external_id}/{data.external_id}"[:128],
            subject=subject[:300],
            body=data.content,
            channel=previous.channel,
            customer=CustomerData(external_id=customer.external_id, name=customer.name),
            metadata={"follows": previous.pk},
        )
    )
    if created:
        Ticket.objects.filter(pk=ticket.pk).update(follows=previous)
        first = ticket.messages.get()
        headers = {name.lower(): value for name, value in data.headers.items()}
        Message.objects.filter(pk=first.pk).update(
            external_id=data.external_id,
            email_message_id=next(iter(_message_ids(headers.get("message-id", ""))), ""),
            metadata={**first.metadata, **({"headers": data.headers} if data.headers else {})},
        )
        ticket.refresh_from_db()
    message = ticket.messages.order_by("created_at", "id").first()
    return Received(message, ticket, created=created, outcome="new_ticket" if created else "duplicate")

"""Messages to the customer on their way out: each one delivered through its ticket's channel,
once (part of the app's services).

``message_post`` writes a message to the customer with its delivery state in the same
transaction (``outgoing_fields``, ``message_queued``). On an email ticket it is ``queued`` and
a task (``tickets.tasks.message_deliver``) sends it after commit; the delivery sweep
(``deliveries_sweep``, every minute) sends again whatever a lost task or a killed worker left
behind. On every other channel it is ``sent`` at once: the ``ticket.message.created`` event is
its delivery. A notice (``notice_post``: the satisfaction survey) is always a mail, whatever
the channel, and is no reply: it is not the first response and carries no confirm link.

A delivered reply is announced to the other apps (``signals.reply_delivered``) in the
transaction that records it: the outcomes app starts the quiet period of an AI reply there.

An attempt first claims the message with a conditional UPDATE (``_claim``): it moves
``delivery_due_at`` to the end of a lease, so nobody else attempts it meanwhile, and no
network call happens inside a transaction. A transient failure (connection refused, timeout,
SMTP 4xx) is ``retrying`` on ``CSAI_MAIL_RETRY_SCHEDULE``; a permanent one (SMTP 5xx, no
address) is ``failed`` with its reason. The first-response SLA is met when a reply is sent,
not when it is stored.
"""

import logging
import random
import re
import smtplib
from datetime import datetime, timedelta
from email.utils import make_msgid, parseaddr

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from django.db import transaction
from django.db.models import F, Q
from django.template.loader import render_to_string
from django.utils import timezone

from tickets import links, signals
from tickets.models import PENDING_DELIVERY, Channel, Delivery, Message, Ticket

logger = logging.getLogger(__name__)

JITTER = 0.2  # ± share of each retry delay
# A pending delivery whose attempt is this overdue had its task lost; the sweep sends it.
DELIVERY_GRACE = timedelta(minutes=1)
SWEEP_BATCH = 500
# The latest message ids a reply names in References (the first one is always kept).
REFERENCES_KEPT = 20


class Undeliverable(Exception):
    """A message that cannot go out, whatever the number of tries (no address)."""


def outgoing_fields(*, ticket: Ticket, now: datetime, mail: bool = False) -> dict:
    """The delivery fields of a new message to the customer on ``ticket`` (``mail``: by email
    whatever the ticket's channel, as a notice is)."""
    if ticket.channel != Channel.EMAIL and not mail:
        return {"delivery": Delivery.SENT, "delivered_at": now}
    return {
        "delivery": Delivery.QUEUED,
        "delivery_due_at": now,
        # Fixed now, so every attempt sends the same Message-ID (a receiver that got it twice
        # can tell), and the customer's answer naming it leads back to the ticket.
        "email_message_id": make_msgid(idstring=f"ticket{ticket.pk}", domain=_mail_domain()),
    }


def message_queued(*, message: Message) -> None:
    """A message to the customer was just written with ``outgoing_fields``. Call in the
    transaction that wrote it."""
    # message_post announces it (``ticket.message.created``) in the same transaction.
    if message.delivery == Delivery.SENT:
        _delivered(message, at=message.delivered_at)
    else:
        transaction.on_commit(lambda: _enqueue(message.pk), robust=True)  # else the sweep sends it


def message_deliver(*, message_id: int) -> str:
    """Attempt a pending message once and record what happened; returns a short status.

    Never sends a message that was sent: only a due pending message can be claimed, and a
    claim holds it for a lease of ten SMTP timeouts. A worker killed in the middle leaves the
    claim to expire; then the sweep sends it again.
    """
    message = Message.objects.select_related("ticket__customer").filter(pk=message_id).first()
    if message is None:
        return "missing"
    if message.delivery not in PENDING_DELIVERY:
        return f"already-{message.delivery or 'not-outgoing'}"
    lease = _claim(message_id, timezone.now())
    if lease is None:
        return "not-due"
    message.refresh_from_db(fields=["delivery_attempts"])
    try:
        if message.ticket.channel == Channel.EMAIL or message.kind == Message.Kind.NOTICE:
            _send_mail(message)
    except Exception as error:  # every failure is recorded on the message
        reason, transient = _failure(error)
        if not transient and not isinstance(error, Undeliverable | smtplib.SMTPException):
            logger.exception("delivery failed unexpectedly", extra={"message_id": message_id})
        return _record_failure(message, lease=lease, reason=reason, transient=transient)
    return _record_sent(message, lease=lease)


def deliveries_sweep(*, grace: timedelta = DELIVERY_GRACE) -> int:
    """Enqueue every pending delivery overdue by ``grace`` (its task was lost, or the worker
    attempting it was killed and its lease ran out); returns how many."""
    cutoff = timezone.now() - grace
    overdue = list(
        Message.objects.filter(delivery__in=PENDING_DELIVERY, delivery_due_at__lte=cutoff)
        .order_by("delivery_due_at")
        .values_list("pk", flat=True)[:SWEEP_BATCH]
    )
    for message_id in overdue:
        logger.warning("re-enqueueing delivery", extra={"message_id": message_id})
        _enqueue(message_id)
    return len(overdue)


def message_redeliver(*, message_id: int) -> bool:
    """Try a failed message again from the start (after the address or the mail server was
    fixed); False when it had not failed."""
    with transaction.atomic():
        again = Message.objects.filter(pk=message_id, delivery=Delivery.FAILED).update(
            delivery=Delivery.QUEUED, delivery_error="", delivery_attempts=0, delivery_due_at=timezone.now()
        )
        if again:
            transaction.on_commit(lambda: _enqueue(message_id), robust=True)
    return bool(again)


# --- an attempt ------------------------------------------------------------------------------


def _claim(message_id: int, now: datetime) -> datetime | None:
    """Take a due pending message for one attempt (a conditional UPDATE, committed at once);
    None when it is not due, taken by another attempt, or finished."""
    lease = now + timedelta(seconds=10 * settings.EMAIL_TIMEOUT)  # connect, hello, send … each may time out
    claimed = Message.objects.filter(
        pk=message_id, delivery__in=PENDING_DELIVERY, delivery_due_at__lte=now
    ).update(delivery_due_at=lease, delivery_attempts=F("delivery_attempts") + 1)
    return lease if claimed else None


def _record_sent(message: Message, *, lease: datetime) -> str:
    now = timezone.now()
    with transaction.atomic():
        sent = {"delivery": Delivery.SENT, "delivered_at": now, "delivery_error": "", "delivery_due_at": None}
        mine = Message.objects.filter(pk=message.pk, delivery__in=PENDING_DELIVERY, delivery_due_at=lease)
        if not mine.update(**sent):
            # The lease ran out before the server answered: another attempt may be under way.
            logger.warning("sent after its lease ended", extra={"message_id": message.pk})
            Message.objects.filter(pk=message.pk, delivery__in=PENDING_DELIVERY).update(**sent)
        _delivered(message, at=now)
    logger.info("reply delivered", extra={"message_id": message.pk, "ticket_id": message.ticket_id})
    return "sent"


def _record_failure(message: Message, *, lease: datetime, reason: str, transient: bool) -> str:
    schedule = settings.CSAI_MAIL_RETRY_SCHEDULE
    attempt = message.delivery_attempts
    mine = Message.objects.filter(pk=message.pk, delivery__in=PENDING_DELIVERY, delivery_due_at=lease)
    if transient and attempt <= len(schedule):
        delay = schedule[attempt - 1] * random.uniform(1 - JITTER, 1 + JITTER)
        due = timezone.now() + timedelta(seconds=delay)
        if mine.update(delivery=Delivery.RETRYING, delivery_error=reason, delivery_due_at=due):
            _enqueue(message.pk, eta=due)
        logger.warning("delivery will be retried", extra={"message_id": message.pk, "why": reason})
        return "retrying"
    mine.update(delivery=Delivery.FAILED, delivery_error=reason, delivery_due_at=None)
    logger.error("delivery failed", extra={"message_id": message.pk, "why": reason})
    return "failed"


def _failure(error: Exception) -> tuple[str, bool]:
    """(reason shown on the message, whether another attempt may succeed)."""
    if isinstance(error, Undeliverable):
        return str(error), False
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        answers = error.recipients.values()
        text = "; ".join(f"{code} {_text(said)}" for code, said in answers)
        return f"The mail server refused the address: {text}", all(400 <= code < 500 for code, _ in answers)
    if isinstance(error, smtplib.SMTPResponseException):  # refused sender, data, hello, login …
        code = error.smtp_code
        return f"The mail server answered {code} {_text(error.smtp_error)}", 400 <= code < 500
    if isinstance(error, smtplib.SMTPServerDisconnected | OSError):  # refused, reset, timeout, DNS
        return f"The mail server could not be reached: {error or type(error).__name__}", True
    return f"{type(error).__name__}: {error}", False


def _text(said) -> str:
    return said.decode(errors="replace") if isinstance(said, bytes) else str(said)


# --- email -----------------------------------------------------------------------------------


def _send_mail(message: Message) -> None:
    """Send ``message`` by SMTP (Django's mail backend), threaded after the ticket's earlier mail."""
    ticket = message.ticket
    address = ticket.customer.email
    if not address:
        raise Undeliverable("The customer has no email address: the reply cannot be mailed.")
    earlier = list(
        ticket.messages.exclude(email_message_id="")
        .filter(Q(created_at__lt=message.created_at) | Q(created_at=message.created_at, pk__lt=message.pk))
        .order_by("created_at", "pk")
        .values_list("email_message_id", flat=True)
    )
    headers = {"Message-ID": message.email_message_id}
    if earlier:
        # RFC 5322 §3.6.4: the message answered, and the thread from its start.
        headers["In-Reply-To"] = earlier[-1]
        kept = earlier if len(earlier) <= REFERENCES_KEPT else [earlier[0], *earlier[-REFERENCES_KEPT + 1 :]]
        headers["References"] = " ".join(kept)
    context = {"message": message, "ticket": ticket, "customer": ticket.customer}
    if message.kind == Message.Kind.NOTICE:
        template, subject = "tickets/mail/notice", message.metadata.get("subject") or ticket.subject
        context["link"] = message.metadata.get("link")
    else:
        template, subject = "tickets/mail/reply", _reply_subject(ticket.subject)
        context["confirm_url"] = links.CONFIRM.url(message.pk)
    mail = EmailMultiAlternatives(
        subject=" ".join(subject.split()),
        body=render_to_string(f"{template}.txt", context),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[address],
        headers=headers,
        connection=get_connection(fail_silently=False),
    )
    mail.attach_alternative(render_to_string(f"{template}.html", context), "text/html")
    mail.send()


def _reply_subject(subject: str) -> str:
    subject = " ".join(subject.split())  # a header holds no line breaks
    return subject if re.match(r"(?i)re:", subject) else f"Re: {subject}"


def _mail_domain() -> str:
    return parseaddr(settings.DEFAULT_FROM_EMAIL)[1].rpartition("@")[2] or "localhost"


# --- shared ----------------------------------------------------------------------------------


def _delivered(message: Message, *, at: datetime) -> None:
    """A message reached the customer: a reply may be the first response, and is announced."""
    if message.kind != Message.Kind.EXTERNAL:
        return
    _first_response(message, at=at)
    signals.reply_delivered.send(sender=Message, message=message, delivered_at=at)


def _first_response(message: Message, *, at: datetime) -> None:
    """The ticket's first response is the first reply that went out."""
    if Ticket.objects.filter(pk=message.ticket_id, first_response_at__isnull=True).update(
        first_response_at=at, updated_at=timezone.now()
    ):
        message.ticket.first_response_at = at


def _enqueue(message_id: int, *, eta: datetime | None = None) -> None:
    from tickets.tasks import message_deliver

    message_deliver.apply_async((message_id,), eta=eta)

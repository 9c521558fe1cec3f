"""Every write the review console makes: claims, notes, ticket changes, login throttle.

A person's answer to a review item is autonomy.services.controller.review_item_answer."""

import hashlib

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from agents.models import EscalationPath
from autonomy.models import CLAIM_TTL, ReviewItem
from autonomy.services.controller import outgoing_text_check, review_item_hold, ticket_review_close
from csai.errors import ApplicationError
from tickets.models import Message, Ticket
from tickets.services import (
    message_post,
    ticket_assign,
    ticket_await_customer,
    ticket_close,
    ticket_escalate,
    ticket_reopen,
    ticket_resolve,
)

CLOSED = (Ticket.Status.RESOLVED, Ticket.Status.CLOSED)

# --- claims: a reviewer holds a whole ticket ---------------------------------------------------


def ticket_review_claim(*, ticket: Ticket, user) -> None:
    """Hold every pending review item of ``ticket`` for ``user`` for ``CLAIM_TTL``; nobody else
    may answer them meanwhile. A reviewer works one ticket at a time: taking one gives back
    any other they held.

    Locks the ticket's pending items (in id order, so two reviewers racing for one ticket are
    served one after the other). Claiming what we hold does not extend the claim: its start
    is when the time to decide is counted from. Raises ``ApplicationError`` (409) when
    someone else holds the ticket or nothing waits on it.
    """
    now = timezone.now()
    with transaction.atomic():
        ReviewItem.objects.filter(claimed_by=user, status=ReviewItem.Status.PENDING).exclude(
            ticket=ticket
        ).update(claimed_by=None, claimed_until=None)
        items = list(
            ReviewItem.objects.select_for_update(of=("self",))
            .filter(ticket=ticket, status=ReviewItem.Status.PENDING)
            .select_related("claimed_by")
            .order_by("id")
        )
        if not items:
            raise ApplicationError("Nothing on this ticket waits for a person any more.", status_code=409)
        for item in items:
            if item.claimed_by_id not in (None, user.pk) and item.claimed_until and item.claimed_until > now:
                raise ApplicationError(f"{item.claimed_by} is working on this ticket.", status_code=409)
        ReviewItem.objects.filter(pk__in=[item.pk for item in items]).exclude(
            claimed_by=user, claimed_until__gt=now
        ).update(claimed_by=user, claimed_until=now + CLAIM_TTL)


def ticket_review_release(*, ticket: Ticket, user) -> bool:
    """Give back the ticket ``user`` holds; False when they held none of it."""
    return bool(
        ReviewItem.objects.filter(ticket=ticket, claimed_by=user, status=ReviewItem.Status.PENDING).update(
            claimed_by=None, claimed_until=None
        )
    )


def _ticket_held(ticket: Ticket, user) -> Ticket:
    """The ticket row locked, if nobody else holds its review now. Call inside a transaction."""
    locked = Ticket.objects.select_for_update().get(pk=ticket.pk)
    for item in ReviewItem.objects.filter(ticket=ticket, status=ReviewItem.Status.PENDING):
        review_item_hold(item=item, actor=user)
    return locked


# --- what a person does with a ticket --------------------------------------------------------


def ticket_escalate_by(*, ticket: Ticket, user, path: str, note: str) -> None:
    """Escalate ``ticket`` along ``path`` with the person's note. Its pending review items are
    closed: the team it goes to answers it now."""
    if path not in EscalationPath.values:
        raise ApplicationError(f"{path!r} is not an escalation path.")
    with transaction.atomic():
        ticket = _ticket_held(ticket, user)
        text = f"Escalated by {user.get_username()} to {EscalationPath(path).ladder[0]} ({path} path)."
        if note.strip():
            text += f" {note.strip()}"
        ticket_escalate(ticket=ticket, team=path, note=text, sender_id=str(user.pk))
        ticket_review_close(ticket=ticket, why="escalated")


def ticket_request_info_by(*, ticket: Ticket, user, text: str) -> None:
    """Ask the customer for more information; the ticket then waits for them."""
    if not text.strip():
        raise ApplicationError("Write what you need to know.")
    outgoing_text_check(text)
    with transaction.atomic():
        ticket = _ticket_held(ticket, user)
        if ticket.assignee_id is None:
            ticket_assign(ticket=ticket, team=ticket.team, assignee=user)  # people own what they answer
        message_post(
            ticket=ticket,
            kind=Message.Kind.EXTERNAL,
            sender_kind=Message.SenderKind.CS_AGENT,
            sender_id=str(user.pk),
            content=text.strip(),
        )
        ticket_await_customer(ticket=ticket)


def ticket_reply_by(*, ticket: Ticket, user, text: str) -> Message:
    """A person's reply to the customer, written on the ticket page. The guardrails check it;
    the person owns the ticket from now on (the AI only suggests replies there)."""
    if not text.strip():
        raise ApplicationError("The reply is empty.")
    outgoing_text_check(text)
    with transaction.atomic():
        ticket = Ticket.objects.select_for_update().get(pk=ticket.pk)
        if ticket.assignee_id is None:
            ticket_assign(ticket=ticket, team=ticket.team, assignee=user)
        return message_post(
            ticket=ticket,
            kind=Message.Kind.EXTERNAL,
            sender_kind=Message.SenderKind.CS_AGENT,
            sender_id=str(user.pk),
            content=text.strip(),
        )


def ticket_release_by(*, ticket: Ticket, user) -> None:
    """Give the ticket back: nobody owns it, and the AI may answer on its own again."""
    if ticket.assignee_id is None:
        raise ApplicationError("Nobody owns this ticket.")
    ticket_reassign_by(ticket=ticket, user=user, team=ticket.team, assignee=None)


def note_add(*, ticket: Ticket, user, text: str) -> Message:
    """An internal note on the ticket (never sent to the customer)."""
    if not text.strip():
        raise ApplicationError("The note is empty.")
    return message_post(
        ticket=ticket,
        kind=Message.Kind.INTERNAL,
        sender_kind=Message.SenderKind.CS_AGENT,
        sender_id=str(user.pk),
        content=text.strip(),
    )


# --- tickets (supervisors) -----------------------------------------------------------------


def ticket_resolve_by(*, ticket: Ticket, user) -> None:
    """The person says the customer's problem is solved; what still waited for review on the
    ticket is closed."""
    if ticket.status in CLOSED:
        raise ApplicationError(f"The ticket is already {ticket.get_status_display().lower()}.")
    with transaction.atomic():
        ticket = _ticket_held(ticket, user)
        ticket_resolve(ticket=ticket, actor=user)
        ticket_review_close(ticket=ticket, why="resolved")
        note_add(ticket=ticket, user=user, text=f"Resolved by {user.get_username()}.")


def ticket_close_by(*, ticket: Ticket, user) -> None:
    """Close the ticket for good (resolving it first if it was not)."""
    if ticket.status == Ticket.Status.CLOSED:
        raise ApplicationError("The ticket is already closed.")
    with transaction.atomic():
        ticket = _ticket_held(ticket, user)
        ticket_close(ticket=ticket, actor=user)
        ticket_review_close(ticket=ticket, why="closed")
        note_add(ticket=ticket, user=user, text=f"Closed by {user.get_username()}.")


def ticket_reopen_by(*, ticket: Ticket, user) -> None:
    """Open a resolved or closed ticket again."""
    if ticket.status not in CLOSED:
        raise ApplicationError("Only a resolved or closed ticket can be reopened.")
    with transaction.atomic():
        ticket_reopen(ticket=ticket, actor=user)
        note_add(ticket=ticket, user=user, text=f"Reopened by {user.get_username()}.")


def ticket_assign_to_me(*, ticket: Ticket, user) -> None:
    """``user`` takes the ticket (its team stays)."""
    if ticket.assignee_id == user.pk:
        raise ApplicationError("The ticket is already yours.")
    ticket_reassign_by(ticket=ticket, user=user, team=ticket.team, assignee=user)


def ticket_reassign_by(*, ticket: Ticket, user, team: str, assignee) -> None:
    with transaction.atomic():
        ticket_assign(ticket=ticket, team=team, assignee=assignee)
        who = assignee.get_username() if assignee else "nobody in particular"
        note_add(
            ticket=ticket,
            user=user,
            text=f"Reassigned by {user.get_username()} to {team or 'no team'}, {who}.",
        )


# --- failed-login throttle -----------------------------------------------------------------


def _login_key(username: str, address: str) -> str:
    digest = hashlib.sha256(f"{username.strip().lower()}|{address}".encode()).hexdigest()[:32]
    return f"login-failures:{digest}"


def login_locked(*, username: str, address: str) -> bool:
    limit, _ = settings.CSAI_LOGIN_FAILURES
    return (cache.get(_login_key(username, address)) or 0) >= limit


def login_failure_record(*, username: str, address: str) -> int:
    """Count one failed login for this username from this address; the window starts at the first."""
    _, window = settings.CSAI_LOGIN_FAILURES
    key = _login_key(username, address)
    cache.add(key, 0, timeout=window)
    return cache.incr(key)


def login_failures_clear(*, username: str, address: str) -> None:
    cache.delete(_login_key(username, address))

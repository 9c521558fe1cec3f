"""Every write the review console makes: claims, notes, ticket changes, login throttle.

A person's answer to a review item is autonomy.services.controller.review_item_answer."""

import hashlib

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from agents.models import EscalationPath
from autonomy.models import CLAIM_TTL, ReviewItem
from autonomy.services.controller import outgoing_text_check, review_item_hold
from csai.errors import ApplicationError
from tickets.models import Message, Ticket
from tickets.services import (
    message_post,
    ticket_assign,
    ticket_await_customer,
    ticket_escalate,
    ticket_reopen,
)

# --- claims ------------------------------------------------------------------------------


def review_item_claim(*, item: ReviewItem, user) -> ReviewItem:
    """Hold ``item`` for ``user`` for ``CLAIM_TTL``; nobody else may decide it meanwhile.

    A conditional UPDATE (pending, and free, expired or already ours) whose row count says
    who won, so two reviewers racing for one item never both hold it. Claiming an item we
    hold does not extend the claim: its start is when the time to decide is counted from.
    A reviewer works one item at a time: taking one gives back any other they held.
    Raises ``ApplicationError`` (409) when someone else holds it or it was decided.
    """
    now = timezone.now()
    ReviewItem.objects.filter(claimed_by=user, status=ReviewItem.Status.PENDING).exclude(pk=item.pk).update(
        claimed_by=None, claimed_until=None
    )
    pending = ReviewItem.objects.filter(pk=item.pk, status=ReviewItem.Status.PENDING)
    if not pending.filter(claimed_by=user, claimed_until__gt=now).exists():
        free = Q(claimed_by__isnull=True) | Q(claimed_until__lt=now) | Q(claimed_by=user)
        if not pending.filter(free).update(claimed_by=user, claimed_until=now + CLAIM_TTL):
            item.refresh_from_db(fields=["status", "claimed_by", "claimed_until"])
            if item.status != ReviewItem.Status.PENDING:
                raise ApplicationError("This item has already been decided.", status_code=409)
            raise ApplicationError(f"{item.claimed_by} is working on this item.", status_code=409)
    item.refresh_from_db(fields=["claimed_by", "claimed_until"])
    return item


def review_item_release(*, item: ReviewItem, user) -> bool:
    """Give back a claim ``user`` holds; False when they held none."""
    return bool(
        ReviewItem.objects.filter(pk=item.pk, claimed_by=user, status=ReviewItem.Status.PENDING).update(
            claimed_by=None, claimed_until=None
        )
    )


def review_escalate(*, item: ReviewItem, user, path: str, note: str) -> None:
    """Escalate the item's ticket along ``path`` with the reviewer's note; the item stays in the
    queue (released) for whoever decides it next."""
    if path not in EscalationPath.values:
        raise ApplicationError(f"{path!r} is not an escalation path.")
    with transaction.atomic():
        review_item_hold(item=item, actor=user)
        ticket = Ticket.objects.select_for_update().get(pk=item.ticket_id)
        text = f"Escalated by {user.get_username()} to {EscalationPath(path).ladder[0]} ({path} path)."
        if note.strip():
            text += f" {note.strip()}"
        ticket_escalate(ticket=ticket, team=path, note=text, sender_id=str(user.pk))
        review_item_release(item=item, user=user)


def review_request_info(*, item: ReviewItem, user, text: str) -> None:
    """Ask the customer for more information; the ticket then waits for them."""
    if not text.strip():
        raise ApplicationError("Write what you need to know.")
    outgoing_text_check(text)
    with transaction.atomic():
        review_item_hold(item=item, actor=user)
        ticket = Ticket.objects.select_for_update().get(pk=item.ticket_id)
        message_post(
            ticket=ticket,
            kind=Message.Kind.EXTERNAL,
            sender_kind=Message.SenderKind.CS_AGENT,
            sender_id=str(user.pk),
            content=text.strip(),
        )
        ticket_await_customer(ticket=ticket)


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


def ticket_reopen_by(*, ticket: Ticket, user) -> None:
    if ticket.status in (Ticket.Status.OPEN, Ticket.Status.NEW):
        raise ApplicationError("The ticket is already open.")
    with transaction.atomic():
        ticket_reopen(ticket=ticket)
        note_add(ticket=ticket, user=user, text=f"Reopened by {user.get_username()}.")


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

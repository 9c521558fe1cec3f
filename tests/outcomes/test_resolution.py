"""The AI resolves a ticket when its reply meant to solve the problem was delivered and the
customer stays quiet; the customer writing again cancels it or reopens; resolved tickets close."""

import threading
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from agents.models import Strategy
from events.models import Event
from tests.conftest import MESSAGES_URL, signed_post
from tests.outcomes.conftest import deliver, reply, strategy
from tickets import tasks
from tickets.models import Ticket
from tickets.services import ticket_resolve, tickets_close_resolved, tickets_resolve_assumed

QUIET = timedelta(hours=72)


def follow_up(client, ticket: Ticket, text: str = "It still shows the same error.", n: int = 2):
    body = {
        "source": ticket.source,
        "ticket_external_id": ticket.external_id,
        "external_id": f"m{n}",
        "content": text,
    }
    return signed_post(client, body, url=MESSAGES_URL)


@pytest.fixture
def ai_answered(ticket, mailed):
    """The AI's own reply under AUTOMATED_RESOLUTION, delivered."""
    strategy(ticket)
    message = deliver(reply(ticket))
    ticket.refresh_from_db()
    return ticket, message


def test_a_delivered_ai_reply_makes_the_ticket_wait_for_the_customer_for_the_quiet_period(ai_answered):
    ticket, message = ai_answered

    assert ticket.status == Ticket.Status.PENDING_CUSTOMER
    assert ticket.assumed_resolution_at == message.delivered_at + QUIET
    assert ticket.resolved_at is None


def test_the_sweep_resolves_it_by_the_ai_once_the_quiet_period_has_passed(ai_answered):
    ticket, _ = ai_answered
    due = ticket.assumed_resolution_at

    assert tickets_resolve_assumed(now=due - timedelta(seconds=1)) == 0
    assert tickets_resolve_assumed(now=due) == 1
    assert tickets_resolve_assumed(now=due + QUIET) == 0  # once

    ticket.refresh_from_db()
    assert (ticket.status, ticket.resolved_by, ticket.resolved_at) == ("resolved", "ai", due)
    assert ticket.assumed_resolution_at is None and ticket.resolver is None
    event = Event.objects.get(type="ticket.resolved", subject_id=str(ticket.pk))
    assert event.payload["resolved_by"] == {"kind": "ai"}


def test_the_beat_task_runs_the_sweep(ai_answered):
    ticket, _ = ai_answered
    Ticket.objects.filter(pk=ticket.pk).update(assumed_resolution_at=timezone.now() - timedelta(minutes=1))

    assert tasks.resolution_sweep() == "resolved:1"
    assert tasks.resolution_sweep() == "resolved:0"


@pytest.mark.django_db(transaction=True)
def test_the_sweep_skips_a_ticket_another_transaction_holds(ticket):
    """A customer's follow-up being stored holds the row: the sweep leaves it to the next round."""
    Ticket.objects.filter(pk=ticket.pk).update(
        status=Ticket.Status.PENDING_CUSTOMER, assumed_resolution_at=timezone.now() - timedelta(minutes=1)
    )
    ticket.refresh_from_db()
    locked, release = threading.Event(), threading.Event()

    def hold():
        with transaction.atomic():
            Ticket.objects.select_for_update().get(pk=ticket.pk)
            locked.set()
            release.wait(10)
        connection.close()

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert locked.wait(10)
        assert tickets_resolve_assumed(now=ticket.assumed_resolution_at) == 0
    finally:
        release.set()
        holder.join()
    assert tickets_resolve_assumed(now=ticket.assumed_resolution_at) == 1


@pytest.mark.parametrize("label", [Strategy.REQUEST_MORE_INFO, Strategy.ESCALATE_TO_HUMAN])
def test_an_ai_reply_under_another_strategy_resolves_nothing(ticket, mailed, label):
    strategy(ticket, label)
    deliver(reply(ticket, "Which browser do you use?"))

    ticket.refresh_from_db()
    assert ticket.assumed_resolution_at is None
    assert tickets_resolve_assumed(now=timezone.now() + QUIET * 2) == 0


def test_a_persons_reply_is_not_an_ai_resolution_and_ends_a_quiet_period_under_way(ai_answered, reviewer):
    ticket, _ = ai_answered

    deliver(reply(ticket, "Adding to what the assistant said: also clear your cache.", actor=reviewer))

    ticket.refresh_from_db()
    assert ticket.assumed_resolution_at is None
    assert tickets_resolve_assumed(now=timezone.now() + QUIET * 2) == 0


def test_a_follow_up_in_the_quiet_period_cancels_the_assumed_resolution(ai_answered, client):
    ticket, _ = ai_answered

    assert follow_up(client, ticket).json()["outcome"] == "continued"

    ticket.refresh_from_db()
    assert (ticket.status, ticket.assumed_resolution_at) == (Ticket.Status.OPEN, None)
    assert tickets_resolve_assumed(now=timezone.now() + QUIET * 2) == 0


def test_a_follow_up_after_the_ai_resolution_reopens_and_it_no_longer_counts_as_the_ais(ai_answered, client):
    ticket, _ = ai_answered
    tickets_resolve_assumed(now=ticket.assumed_resolution_at)

    assert follow_up(client, ticket, "Sorry, it broke again this morning.").json()["outcome"] == "reopened"

    ticket.refresh_from_db()
    assert (ticket.status, ticket.resolved_by, ticket.resolved_at) == (Ticket.Status.OPEN, "", None)
    assert ticket.reopened_count == 1
    assert Event.objects.filter(type="ticket.reopened", subject_id=str(ticket.pk)).exists()


def test_resolved_tickets_close_after_the_configured_days_keeping_who_resolved_them(
    ticket, reviewer, settings
):
    settings.CSAI_CLOSE_AFTER_DAYS = 7
    with transaction.atomic():
        ticket_resolve(ticket=ticket, actor=reviewer, at=timezone.now() - timedelta(days=7, minutes=1))

    assert tickets_close_resolved(now=timezone.now() - timedelta(minutes=2)) == 0  # not 7 days yet
    assert tasks.close_sweep() == "closed:1"
    assert tasks.close_sweep() == "closed:0"

    ticket.refresh_from_db()
    assert (ticket.status, ticket.resolved_by, ticket.resolver) == ("closed", "person", reviewer)
    assert ticket.closed_at is not None

"""POST /api/v1/webhooks/messages: a customer writes again. Stored once, on the right ticket;
a resolved ticket reopens within the window, a closed one is continued by a new ticket; an
auto-reply is kept and answered by nobody; an unknown ticket is 404 and stores nothing."""

import json
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from threading import Barrier

import pytest
from django.db import connections
from django.test import Client
from django.utils import timezone

from tests.conftest import MESSAGES_URL, signed_post, ticket_payload
from tickets import signals
from tickets.models import Message, Ticket


@pytest.fixture
def turns(db):
    """The turns the agents were asked for: (ticket_id, message_id)."""
    started = []

    def record(sender, *, ticket_id, message_id, **_):
        started.append((ticket_id, message_id))

    signals.customer_wrote.connect(record, dispatch_uid="test-turns")
    yield started
    signals.customer_wrote.disconnect(dispatch_uid="test-turns")


@pytest.fixture
def ticket(client, db):
    signed_post(client, ticket_payload())
    return Ticket.objects.get(external_id="ZD-1001")


def follow_up(**overrides) -> dict:
    return {
        "source": "zendesk",
        "ticket_external_id": "ZD-1001",
        "external_id": "msg-2",
        "content": "It happened again this morning, order ORD-2024-004512.",
        **overrides,
    }


def test_a_follow_up_is_stored_once_and_starts_a_turn(
    client, ticket, turns, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        first = signed_post(client, follow_up(), url=MESSAGES_URL)
    with django_capture_on_commit_callbacks(execute=True):
        again = signed_post(client, follow_up(), url=MESSAGES_URL)

    assert first.status_code == 201 and again.status_code == 200
    assert first.json() == again.json() | {"outcome": "continued"}
    assert again.json()["outcome"] == "duplicate"
    message = Message.objects.get(external_id="msg-2")
    assert (message.ticket, message.sender_kind, message.content) == (
        ticket, "customer", "It happened again this morning, order ORD-2024-004512.",
    )  # fmt: skip
    assert turns == [(ticket.pk, message.pk)]  # one turn, whatever the redeliveries


def test_the_same_follow_up_delivered_20_times_at_once_is_one_message(transactional_db, client):
    signed_post(client, ticket_payload())
    raw = json.dumps(follow_up()).encode()
    start = Barrier(20)

    def deliver(_):
        try:
            start.wait()
            return signed_post(Client(), raw, url=MESSAGES_URL).status_code
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=20) as pool:
        statuses = sorted(pool.map(deliver, range(20)))

    assert statuses == [200] * 19 + [201]
    assert Message.objects.filter(external_id="msg-2").count() == 1


def test_an_unknown_ticket_is_404_and_nothing_is_stored(client, ticket):
    response = signed_post(client, follow_up(ticket_external_id="ZD-9999"), url=MESSAGES_URL)
    assert response.status_code == 404
    assert not Message.objects.filter(external_id="msg-2").exists()


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"content": "   "}, "content"),
        ({"ticket_external_id": ""}, "ticket_external_id"),
        ({"external_id": ""}, "external_id"),
    ],
)
def test_bad_input_is_400_and_stores_nothing(client, ticket, change, field):
    response = signed_post(client, follow_up(**change), url=MESSAGES_URL)
    assert response.status_code == 400 and field in response.json()
    assert ticket.messages.count() == 1


def test_an_unsigned_follow_up_is_refused(client, ticket):
    response = client.post(MESSAGES_URL, follow_up(), content_type="application/json")
    assert response.status_code == 401 and ticket.messages.count() == 1


def test_it_resumes_a_ticket_waiting_for_the_customer(client, ticket):
    Ticket.objects.filter(pk=ticket.pk).update(status=Ticket.Status.PENDING_CUSTOMER)
    signed_post(client, follow_up(), url=MESSAGES_URL)
    ticket.refresh_from_db()
    assert ticket.status == Ticket.Status.OPEN


def test_it_reopens_a_ticket_resolved_within_the_window(client, ticket, settings):
    settings.CSAI_REOPEN_DAYS = 7
    Ticket.objects.filter(pk=ticket.pk).update(
        status="resolved", resolved_at=timezone.now() - timedelta(days=6)
    )
    response = signed_post(client, follow_up(), url=MESSAGES_URL)
    assert response.json()["outcome"] == "reopened"
    ticket.refresh_from_db()
    assert (ticket.status, ticket.resolved_at) == ("open", None)


@pytest.mark.parametrize("state", ["resolved long ago", "closed"])
def test_after_the_window_or_on_a_closed_ticket_a_new_ticket_follows_it(client, ticket, turns, state):
    if state == "closed":
        Ticket.objects.filter(pk=ticket.pk).update(status="closed", resolved_at=timezone.now())
    else:
        Ticket.objects.filter(pk=ticket.pk).update(
            status="resolved", resolved_at=timezone.now() - timedelta(days=8)
        )

    response = signed_post(client, follow_up(), url=MESSAGES_URL)

    assert response.status_code == 201 and response.json()["outcome"] == "new_ticket"
    new = Ticket.objects.get(pk=response.json()["ticket_id"])
    assert new.follows == ticket and new.subject == "Re: Card payment declined at checkout"
    assert new.body == follow_up()["content"] and new.customer == ticket.customer
    assert new.messages.get().external_id == "msg-2"
    assert signed_post(client, follow_up(), url=MESSAGES_URL).status_code == 200  # redelivered: found
    assert Ticket.objects.filter(follows=ticket).count() == 1
    ticket.refresh_from_db()
    assert ticket.status in ("closed", "resolved")  # the old one stays as it was


@pytest.mark.parametrize(
    ("headers", "content"),
    [
        ({"Auto-Submitted": "auto-replied"}, "Thanks for your mail."),
        ({"X-Autoreply": "yes"}, "Thanks for your mail."),
        ({"Precedence": "bulk"}, "Newsletter"),
        ({}, "I am out of the office until Monday and will answer then."),
    ],
)
def test_an_auto_reply_is_kept_but_starts_no_turn(
    client, ticket, turns, headers, content, django_capture_on_commit_callbacks
):
    Ticket.objects.filter(pk=ticket.pk).update(status=Ticket.Status.PENDING_CUSTOMER)
    with django_capture_on_commit_callbacks(execute=True):
        response = signed_post(client, follow_up(content=content, headers=headers), url=MESSAGES_URL)
    assert response.status_code == 201 and response.json()["outcome"] == "auto_reply"
    assert Message.objects.get(external_id="msg-2").metadata["auto_reply"]
    assert turns == []
    ticket.refresh_from_db()
    assert ticket.status == Ticket.Status.PENDING_CUSTOMER  # still waiting for the customer


def test_a_mail_from_our_own_address_is_never_answered(client, ticket, turns, settings):
    settings.DEFAULT_FROM_EMAIL = "support@csai.example"
    response = signed_post(client, follow_up(sender={"email": "Support@csai.example"}), url=MESSAGES_URL)
    assert response.json()["outcome"] == "auto_reply" and turns == []


def test_an_emailed_answer_finds_its_ticket_by_the_mail_it_replies_to(client, ticket):
    Message.objects.filter(ticket=ticket).update(email_message_id="<reply-1@csai.example>")
    headers = {
        "Message-ID": "<CAF-customer-2@mail.example>",
        "In-Reply-To": "<reply-1@csai.example>",
        "References": "<original@mail.example> <reply-1@csai.example>",
    }
    response = signed_post(client, follow_up(ticket_external_id="", headers=headers), url=MESSAGES_URL)
    assert response.status_code == 201 and response.json()["ticket_id"] == ticket.pk
    assert Message.objects.get(external_id="msg-2").email_message_id == "<CAF-customer-2@mail.example>"
    unknown = {"In-Reply-To": "<nobody@csai.example>"}
    assert (
        signed_post(
            client, follow_up(ticket_external_id="", headers=unknown, external_id="m3"), url=MESSAGES_URL
        ).status_code
        == 404
    )

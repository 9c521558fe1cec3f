"""Replies delivered through the ticket's channel, once: by SMTP to a real local server
(aiosmtpd) on email tickets, threaded so the customer's mail client keeps the conversation;
the first response counts when a reply is sent, not when it is stored."""

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from autonomy.appliers import apply_reply
from autonomy.models import Disposition
from tests.autonomy.test_controller import decision, policy, submit
from tests.conftest import MESSAGES_URL, purge_queues, signed_post, ticket_payload
from tests.factories import CustomerFactory, TicketFactory
from tickets import delivery
from tickets.models import Channel, Message, Ticket
from tickets.services import message_post, sla_refresh


def reply_on(ticket: Ticket, text: str = "Hi Dana, the duplicate charge is refunded.", actor=None) -> Message:
    """A reply applied to ``ticket`` (as the controller or a person does) and its message."""
    apply_reply(ticket=ticket, value={"reply": text, "internal_note": ""}, actor=actor)
    return ticket.messages.filter(kind=Message.Kind.EXTERNAL).exclude(sender_kind="customer").latest("id")


def deliver(message: Message) -> str:
    return delivery.message_deliver(message_id=message.pk)


@pytest.fixture
def email_ticket(db, client):
    signed_post(client, ticket_payload())
    return Ticket.objects.select_related("customer").get(external_id="ZD-1001")


def test_a_reply_the_controller_applies_is_mailed_with_plain_and_html_parts(
    db, smtp_server, mail_to, django_capture_on_commit_callbacks
):
    mail_to(smtp_server)
    policy("reply", phase=5, review_rate_phase5=0.0)
    d = decision(decision_type="reply", confidence=0.95)
    with django_capture_on_commit_callbacks() as after_commit:
        assert submit(d) == Disposition.Kind.AUTO_APPLIED
    reply = Message.objects.get(ticket=d.ticket, kind="external", sender_kind="ai_agent")
    assert reply.delivery == "queued" and after_commit  # its task is enqueued once committed
    assert Ticket.objects.get(pk=d.ticket_id).first_response_at is None  # stored is not sent

    assert deliver(reply) == "sent"

    (mail,) = smtp_server.messages
    reply.refresh_from_db()
    customer = d.ticket.customer
    assert mail["To"] == customer.email and mail["From"] == "support@csai.example"
    assert mail["Subject"] == f"Re: {d.ticket.subject}"
    assert mail["Message-ID"] == reply.email_message_id and reply.email_message_id.endswith("@csai.example>")
    plain = mail.get_body(("plain",)).get_content()
    html = mail.get_body(("html",)).get_content()
    assert "we are checking your invoice" in plain and "<p>Hi Ana, we are checking your invoice.</p>" in html
    assert (reply.delivery, reply.delivery_attempts, reply.delivery_error) == ("sent", 1, "")
    # The first-response SLA is met when the reply went out.
    assert Ticket.objects.get(pk=d.ticket_id).first_response_at == reply.delivered_at


def test_replies_thread_in_the_customers_mail_client_and_their_answer_finds_the_ticket(
    client, email_ticket, smtp_server, mail_to, reviewer
):
    mail_to(smtp_server)
    first = reply_on(email_ticket, "We are looking into it.")
    assert deliver(first) == "sent"
    second = reply_on(email_ticket, "Found it: the refund is on its way.", actor=reviewer)
    assert deliver(second) == "sent"

    one, two = smtp_server.messages
    assert one["In-Reply-To"] is None  # the ticket came by webhook, without a mail to answer
    assert two["In-Reply-To"] == first.email_message_id
    assert first.email_message_id in two["References"].split()

    # The customer answers the second mail from their mail client; the relay posts it with its
    # headers and no ticket id: it lands on the ticket.
    headers = {
        "Message-ID": "<CAF-dana-3@mail.acme.example>",
        "In-Reply-To": two["Message-ID"],
        "References": f"{two['References']} {two['Message-ID']}",
    }
    body = {"source": "zendesk", "external_id": "mail-3", "content": "Thanks, got it!", "headers": headers}
    answered = signed_post(client, body, url=MESSAGES_URL)
    assert answered.status_code == 201 and answered.json()["ticket_id"] == email_ticket.pk

    # The next reply answers the customer's mail, and the thread goes back to the first reply.
    third = reply_on(email_ticket, "Glad to help.")
    assert deliver(third) == "sent"
    three = smtp_server.messages[2]
    assert three["In-Reply-To"] == "<CAF-dana-3@mail.acme.example>"
    thread = [first.email_message_id, second.email_message_id, headers["Message-ID"]]
    assert three["References"].split() == thread


def test_a_permanent_refusal_fails_the_reply_with_the_servers_reason(email_ticket, smtp_server, mail_to):
    mail_to(smtp_server).answer = "550 5.1.1 No such user here"
    reply = reply_on(email_ticket)

    assert deliver(reply) == "failed"

    reply.refresh_from_db()
    assert (reply.delivery, reply.delivery_attempts, reply.delivery_due_at) == ("failed", 1, None)
    assert "550" in reply.delivery_error and "No such user" in reply.delivery_error
    assert smtp_server.messages == [] and Ticket.objects.get(pk=email_ticket.pk).first_response_at is None
    assert deliver(reply) == "already-failed"  # nothing tries it again by itself


def test_a_transient_refusal_is_retried_later(email_ticket, smtp_server, mail_to, settings):
    settings.CSAI_MAIL_RETRY_SCHEDULE = [60.0]
    mail_to(smtp_server).answer = "451 4.3.0 Mailbox busy, try later"
    reply = reply_on(email_ticket)
    before = timezone.now()

    assert deliver(reply) == "retrying"

    reply.refresh_from_db()
    assert reply.delivery == "retrying" and "451" in reply.delivery_error
    assert before + timedelta(seconds=47) < reply.delivery_due_at < before + timedelta(seconds=73)
    assert deliver(reply) == "not-due"  # a duplicate task before its time sends nothing


def test_a_customer_without_an_email_address_fails_at_once(db, smtp_server, mail_to):
    mail_to(smtp_server)
    ticket = TicketFactory(customer=CustomerFactory(email=""), channel=Channel.EMAIL)
    reply = reply_on(ticket)

    assert deliver(reply) == "failed"

    reply.refresh_from_db()
    assert reply.delivery_error == "The customer has no email address: the reply cannot be mailed."
    assert smtp_server.messages == []


def test_on_other_channels_a_reply_is_sent_at_once(db, smtp_server, mail_to):
    mail_to(smtp_server)
    ticket = TicketFactory(channel=Channel.WEB_CHAT)
    reply = reply_on(ticket)
    ticket.refresh_from_db()
    assert (reply.delivery, reply.email_message_id) == ("sent", "")
    assert ticket.first_response_at == reply.delivered_at and ticket.status == Ticket.Status.OPEN
    assert smtp_server.messages == []


def test_a_reply_stored_but_not_sent_does_not_stop_the_first_response_clock(email_ticket):
    Ticket.objects.filter(pk=email_ticket.pk).update(first_response_due=timezone.now() - timedelta(minutes=1))
    reply_on(email_ticket)
    sla_refresh()
    assert Ticket.objects.get(pk=email_ticket.pk).sla_state == Ticket.SLAState.BREACHED


def test_internal_notes_and_customer_messages_have_no_delivery(email_ticket):
    post = message_post
    note = post(ticket=email_ticket, kind="internal", sender_kind="cs_agent", sender_id="1", content=".")
    assert note.delivery == "" and email_ticket.messages.get(sender_kind="customer").delivery == ""


@pytest.mark.django_db(transaction=True)
def test_two_attempts_at_once_send_one_mail(smtp_server, mail_to):
    """A task delivered twice while the first is still talking to the server."""
    mail_to(smtp_server)
    reply = reply_on(TicketFactory())
    smtp_server.hold()
    results = []

    def attempt():
        try:
            results.append(deliver(reply))
        finally:
            connection.close()

    first = threading.Thread(target=attempt)
    first.start()
    assert smtp_server.waiting.wait(10)  # the first attempt is under way
    assert deliver(reply) == "not-due"  # the second finds it taken
    smtp_server.release()
    first.join(30)

    assert results == ["sent"] and len(smtp_server.messages) == 1
    assert deliver(reply) == "already-sent"
    purge_queues()


def test_the_sweep_sends_what_a_lost_task_left_queued(email_ticket, settings):
    reply = reply_on(email_ticket)
    assert delivery.deliveries_sweep() == 0  # just queued: its task will come
    Message.objects.filter(pk=reply.pk).update(delivery_due_at=timezone.now() - timedelta(minutes=2))
    try:
        assert delivery.deliveries_sweep() == 1
    finally:
        purge_queues()


def test_an_admin_delivers_a_failed_reply_again(email_ticket, smtp_server, mail_to, admin_client):
    mail_to(smtp_server).answer = "550 5.1.1 No such user here"
    reply = reply_on(email_ticket)
    deliver(reply)
    smtp_server.answer = None  # the address was fixed

    admin_client.post(
        reverse("admin:tickets_message_changelist"),
        {"action": "deliver_again", "_selected_action": [reply.pk]},
    )
    assert deliver(reply) == "sent" and len(smtp_server.messages) == 1

"""The conversation loop end to end, on real servers: Postgres, Redis, a Celery worker, an SMTP
server (aiosmtpd) and a webhook receiver that verifies every Standard Webhooks signature.

Tickets arrive by the signed webhook; an applied reply (phase 3) and a reply a reviewer
approves over REST are mailed with threading headers and announced as
``ticket.message.created``; the customer answers the mail and gets a second reply in the same
thread; on a ticket a person answered, the AI's later reply is only a suggestion."""

import pytest

from agents.models import PipelineRun
from autonomy.models import Disposition, ReviewItem
from events.models import EventType
from events.services import endpoint_create
from review.services import ticket_reply_by
from tests.agents.conftest import demo_classifiers, knowledge, trained_models  # noqa: F401
from tests.conftest import (
    MESSAGES_URL,
    purge_queues,
    signed_post,
    start_worker,
    ticket_payload,
    token_client,
)
from tests.events.conftest import WORKER_ENV
from tests.events.receiver import Receiver
from tests.review.conftest import set_phase
from tickets.models import Message, Ticket

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.worker,
    pytest.mark.usefixtures("trained_models", "knowledge"),
]

TIMEOUT = 120.0  # generous: the CPU may be shared; no assertion is about time


@pytest.fixture
def receiver(settings):
    settings.CSAI_WEBHOOK_ALLOW_PRIVATE = True
    started = Receiver().start()
    started.secret = endpoint_create(url=started.url, event_types=[EventType.TICKET_MESSAGE_CREATED]).secret
    try:
        yield started
    finally:
        started.stop()


@pytest.fixture
def loop_worker(tmp_path, smtp_server, receiver):
    """A worker mailing to the test SMTP server and delivering events to the receiver."""
    purge_queues()
    started = start_worker(tmp_path / "worker.log", **WORKER_ENV, **smtp_server.env())
    try:
        yield started
    finally:
        started.process.terminate()
        started.process.wait(timeout=30)
        purge_queues()


def new_ticket(client, number: int) -> int:
    customer = {
        "external_id": f"CUST-{number}",
        "name": f"Customer {number}",
        "email": f"customer{number}@acme.example",
        "company": "Acme Corp",
        "tier": "STANDARD",
    }
    payload = ticket_payload(
        external_id=f"E2E-{number}",
        subject="How do I export my invoices?",
        body="Hello, where can I download all invoices of last year as PDF files? Thanks.",
        customer=customer,
    )
    response = signed_post(client, payload)
    assert response.status_code in (200, 201, 202), response.content
    return response.json()["ticket_id"]


def replies(ticket_id: int):
    return Message.objects.filter(ticket_id=ticket_id, kind=Message.Kind.EXTERNAL).exclude(
        sender_kind=Message.SenderKind.CUSTOMER
    )


def sent(ticket_id: int, count: int) -> bool:
    return replies(ticket_id).filter(delivery="sent").count() >= count


def mail_for(smtp_server, message: Message):
    message.refresh_from_db()
    assert message.email_message_id, "a delivered email reply has its Message-ID"
    (mail,) = [m for m in smtp_server.messages if m["Message-ID"] == message.email_message_id]
    return mail


def announced(receiver: Receiver, message: Message) -> bool:
    return any(
        r.event["type"] == EventType.TICKET_MESSAGE_CREATED and r.event["data"]["message"]["id"] == message.pk
        for r in receiver.receipts()
    )


def reply_decision(ticket_id: int, turn: int):
    return Disposition.objects.filter(
        decision__ticket_id=ticket_id, decision__decision_type="reply", decision__run__number=turn
    ).first()


def test_the_conversation_loop(client, reviewer, smtp_server, receiver, loop_worker):
    worker = loop_worker

    # 1. Phase 3, an identity calibration, a low threshold: the first ticket's reply is applied
    #    and mailed; the receiver gets its ticket.message.created, signature verified.
    set_phase("reply", 3, threshold=0.05)
    first = new_ticket(client, 1)
    assert worker.wait_for(lambda: sent(first, 1), TIMEOUT), worker.output()
    reply_1 = replies(first).get()
    assert reply_decision(first, 1).kind in (
        Disposition.Kind.AUTO_APPLIED,
        Disposition.Kind.AUTO_APPLIED_WITH_REVIEW,
    )
    mail_1 = mail_for(smtp_server, reply_1)
    assert mail_1["To"] == "customer1@acme.example"
    assert worker.wait_for(lambda: announced(receiver, reply_1), TIMEOUT), worker.output()

    # 2. Phase 2: the second ticket's reply waits for a person; a reviewer approves the draft
    #    over REST in one pass, and it is mailed. A third ticket arrives meanwhile.
    set_phase("reply", 2, threshold=0.05)
    second = new_ticket(client, 2)
    third = new_ticket(client, 3)
    waiting = ReviewItem.objects.filter(decision_type="reply", status=ReviewItem.Status.PENDING)
    both_waiting = lambda: waiting.filter(ticket_id__in=[second, third]).count() == 2  # noqa: E731
    assert worker.wait_for(both_waiting, TIMEOUT), worker.output()
    finished = PipelineRun.objects.filter(ticket_id__in=[second, third], status=PipelineRun.Status.DONE)
    assert worker.wait_for(lambda: finished.count() == 2, TIMEOUT), worker.output()

    api = token_client(reviewer)
    claimed = api.post(f"/api/v1/review/tickets/{second}/claim/")
    assert claimed.status_code == 200, claimed.content
    answers = []
    for item in claimed.json():
        decision_label = ReviewItem.objects.get(pk=item["id"]).decision.label
        answers.append({"item_id": item["id"], "label": decision_label})
    answered = api.post(f"/api/v1/review/tickets/{second}/answer/", {"answers": answers}, format="json")
    assert answered.status_code == 200, answered.content
    assert worker.wait_for(lambda: sent(second, 1), TIMEOUT), worker.output()
    reply_2 = replies(second).get()
    assert reply_2.sender_kind == Message.SenderKind.CS_AGENT  # sent by the reviewer who approved it
    assert mail_for(smtp_server, reply_2)["To"] == "customer2@acme.example"
    assert worker.wait_for(lambda: announced(receiver, reply_2), TIMEOUT), worker.output()

    # 3. Phase 3 again. The customer answers the first reply from their mail client; the relay
    #    posts it with its headers and no ticket id: a second turn, a second reply, same thread.
    set_phase("reply", 3, threshold=0.05)
    headers = {
        "Message-ID": "<answer-1@mail.acme.example>",
        "In-Reply-To": mail_1["Message-ID"],
        "References": mail_1["Message-ID"],
        "From": "customer1@acme.example",
    }
    body = {
        "source": "zendesk",
        "external_id": "mail-answer-1",
        "content": "Thanks. And can I also get them as one ZIP file?",
        "headers": headers,
    }
    response = signed_post(client, body, url=MESSAGES_URL)
    assert response.status_code == 201 and response.json()["ticket_id"] == first, response.content
    assert worker.wait_for(lambda: sent(first, 2), TIMEOUT), worker.output()
    assert PipelineRun.objects.filter(ticket_id=first).count() == 2
    reply_3 = replies(first).latest("id")
    mail_3 = mail_for(smtp_server, reply_3)
    assert mail_3["In-Reply-To"] == "<answer-1@mail.acme.example>"
    assert mail_3["References"].split() == [reply_1.email_message_id, "<answer-1@mail.acme.example>"]
    assert mail_3["Subject"] == mail_1["Subject"]
    assert worker.wait_for(lambda: announced(receiver, reply_3), TIMEOUT), worker.output()

    # 4. A person replies on the third ticket: they own it. The customer writes again; the AI's
    #    reply to that turn is a suggestion for the owner, not sent (though the phase is 3).
    person_reply = ticket_reply_by(
        ticket=Ticket.objects.get(pk=third), user=reviewer, text="Hi, I'm on it: invoices are under Billing."
    )
    assert worker.wait_for(lambda: sent(third, 1), TIMEOUT), worker.output()
    assert mail_for(smtp_server, person_reply)["To"] == "customer3@acme.example"
    follow_up = {
        "source": "zendesk",
        "ticket_external_id": "E2E-3",
        "external_id": "msg-3-2",
        "content": "I can't find Billing in the menu, where is it?",
    }
    assert signed_post(client, follow_up, url=MESSAGES_URL).status_code == 201
    assert worker.wait_for(lambda: reply_decision(third, 2) is not None, TIMEOUT), worker.output()
    suggestion = reply_decision(third, 2)
    assert suggestion.kind == Disposition.Kind.QUEUED_FOR_REVIEW and not suggestion.applied
    assert "owns this ticket" in suggestion.reason
    assert ReviewItem.objects.filter(decision=suggestion.decision, status=ReviewItem.Status.PENDING).exists()
    assert list(replies(third)) == [person_reply]

    # Everything announced was signed and verified; each reply was mailed once.
    assert all(r.verified for r in receiver.received)
    assert len(smtp_server.messages) == 4
    assert len({m["Message-ID"] for m in smtp_server.messages}) == 4

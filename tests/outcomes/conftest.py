"""Tickets answered by the AI or a person, their replies delivered to a real SMTP server."""

import re

import pytest
from django.utils import timezone

from agents.models import AgentDecision, DecisionType, PipelineRun, Strategy
from autonomy.appliers import apply_reply
from tests.factories import CustomerFactory, TicketFactory
from tickets import delivery
from tickets.models import Message, Ticket


def strategy(ticket: Ticket, label: str = Strategy.AUTOMATED_RESOLUTION) -> AgentDecision:
    """The selector's strategy for the ticket's (first) turn."""
    run, _ = PipelineRun.objects.get_or_create(
        ticket=ticket, number=1, defaults={"correlation_id": "c", "started_at": timezone.now()}
    )
    return AgentDecision.objects.create(
        ticket=ticket, run=run, agent="selector", decision_type=DecisionType.STRATEGY,
        value={"strategy": label}, label=label, raw_confidence=0.9, reasoning="test", provider="local",
        latency_ms=1, correlation_id="c", created_at=timezone.now(),
    )  # fmt: skip


def reply(ticket: Ticket, text: str = "Reset your password from the login page.", actor=None) -> Message:
    """A reply applied as the controller (``actor`` None: the AI on its own) or a person does."""
    apply_reply(ticket=ticket, value={"reply": text, "internal_note": ""}, actor=actor)
    return ticket.messages.filter(kind=Message.Kind.EXTERNAL).exclude(sender_kind="customer").latest("id")


def deliver(message: Message) -> Message:
    assert delivery.message_deliver(message_id=message.pk) == "sent"
    message.refresh_from_db()
    return message


def link_in(mail, pattern: str) -> str:
    """The path of the first link to this site matching ``pattern`` in a mail's plain part."""
    found = re.search(
        r"http://testserver(/" + pattern + r"/[^/\s]+/)", mail.get_body(("plain",)).get_content()
    )
    assert found, mail.get_body(("plain",)).get_content()
    return found.group(1)


@pytest.fixture(autouse=True)
def _public_url(settings):
    settings.CSAI_PUBLIC_URL = "http://testserver"


@pytest.fixture
def mailed(db, smtp_server, mail_to):
    """Mail goes to a real SMTP server (``mailed.messages``)."""
    return mail_to(smtp_server)


@pytest.fixture
def ticket(db):
    """An email ticket from a customer with an address, not yet answered."""
    return TicketFactory(customer=CustomerFactory(email="dana@acme.example"), status=Ticket.Status.OPEN)

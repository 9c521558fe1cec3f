"""Escalating a ticket: status, team, a note, and when it first happened (for the dashboard)."""

from tests.factories import TicketFactory
from tickets.models import Message
from tickets.services import ticket_escalate


def test_it_records_the_first_escalation_only(db):
    ticket = TicketFactory()
    ticket_escalate(ticket=ticket, team="billing", note="Refund question", sender_id="rita")
    ticket.refresh_from_db()
    first = ticket.escalated_at
    assert ticket.status == "escalated" and ticket.team == "billing" and first is not None
    assert ticket.messages.filter(kind=Message.Kind.INTERNAL, content="Refund question").exists()

    ticket_escalate(ticket=ticket, team="technical", note="Also a bug", sender_id="rita")
    ticket.refresh_from_db()
    assert ticket.team == "technical" and ticket.escalated_at == first

from django.db.models import QuerySet

from agents.models import AgentDecision
from tickets.models import Ticket


def ticket_decisions(*, ticket: Ticket) -> QuerySet[AgentDecision]:
    """Every decision on a ticket, oldest first (the audit trail)."""
    return AgentDecision.objects.filter(ticket=ticket).select_related("run").order_by("created_at", "id")

"""Reads of the agents app."""

from django.db.models import Q, QuerySet

from agents.models import AgentDecision, DecisionType, PipelineRun
from tickets.models import NOT_ANSWERED, Message, Ticket


def unanswered_messages(*, ticket: Ticket) -> QuerySet[Message]:
    """The customer's messages on ``ticket`` no turn has taken up yet, oldest first: those
    after the latest one a run answers (auto-replies are never answered)."""
    messages = ticket.messages.filter(
        kind=Message.Kind.EXTERNAL, sender_kind=Message.SenderKind.CUSTOMER
    ).exclude(NOT_ANSWERED)
    answered = (
        PipelineRun.objects.filter(ticket=ticket, message__isnull=False)
        .order_by("-message__created_at", "-message_id")
        .values_list("message__created_at", "message_id")
        .first()
    )
    if answered is None:
        if PipelineRun.objects.filter(ticket=ticket).exists():
            # Runs from before turns answered the first message.
            messages = messages.exclude(pk=messages.order_by("created_at", "id").values("pk")[:1])
    else:
        at, message_id = answered
        messages = messages.filter(Q(created_at__gt=at) | Q(created_at=at, pk__gt=message_id))
    return messages.order_by("created_at", "id")


def ticket_strategy(*, ticket_id: int) -> str:
    """The strategy the selector chose in the ticket's latest turn; empty when none yet."""
    return (
        AgentDecision.objects.filter(ticket_id=ticket_id, decision_type=DecisionType.STRATEGY)
        .order_by("-created_at", "-id")
        .values_list("label", flat=True)
        .first()
    ) or ""

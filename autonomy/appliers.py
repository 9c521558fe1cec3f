"""How each of the agents' decision types is carried out on a ticket: registered with the
decision-type registry (agents.decision_types) when the app is ready."""

from agents import decision_types
from agents.models import DecisionType
from tickets.models import Message, Ticket
from tickets.services import message_post, ticket_escalate, ticket_triage_set


def apply_category(*, ticket: Ticket, value: dict, sender_id: str) -> None:
    ticket_triage_set(ticket=ticket, category=value["category"])


def apply_priority(*, ticket: Ticket, value: dict, sender_id: str) -> None:
    ticket_triage_set(ticket=ticket, priority=value["priority"])


def apply_strategy(*, ticket: Ticket, value: dict, sender_id: str) -> None:
    """A strategy shapes the reply and the escalation; it changes nothing on the ticket."""


def apply_escalation(*, ticket: Ticket, value: dict, sender_id: str) -> None:
    if not value.get("escalate"):
        return
    note = f"Escalated to {value['to']} ({value['path']} path), urgency {value['urgency']}."
    ticket_escalate(ticket=ticket, team=value["path"], note=note, sender_id=sender_id)


def apply_reply(*, ticket: Ticket, value: dict, sender_id: str) -> None:
    message_post(
        ticket=ticket,
        kind=Message.Kind.EXTERNAL,
        sender_kind=Message.SenderKind.AI_AGENT,
        sender_id=sender_id,
        content=value["reply"],
    )
    if value.get("internal_note"):
        message_post(
            ticket=ticket,
            kind=Message.Kind.INTERNAL,
            sender_kind=Message.SenderKind.AI_AGENT,
            sender_id=sender_id,
            content=value["internal_note"],
        )


def register() -> None:
    decision_types.applier_register(DecisionType.CATEGORY, apply_category)
    decision_types.applier_register(DecisionType.PRIORITY, apply_priority)
    decision_types.applier_register(DecisionType.STRATEGY, apply_strategy)
    decision_types.applier_register(DecisionType.ESCALATION, apply_escalation)
    decision_types.applier_register(DecisionType.REPLY, apply_reply)

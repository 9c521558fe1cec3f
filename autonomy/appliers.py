"""How each of the agents' decision types is carried out on a ticket: registered with the
decision-type registry (agents.decision_types) when the app is ready.

``actor`` is the person whose answer is applied, or None when the controller applies the
AI's decision on its own: what is written says who did it.
"""

from agents import decision_types
from agents.models import DecisionType
from tickets.models import Message, Ticket
from tickets.services import message_post, ticket_assign, ticket_escalate, ticket_triage_set

# The sender id of what the AI writes on its own.
AI_SENDER = "csai-agents"


def sender_of(actor) -> tuple[str, str]:
    """(sender kind, sender id) of what is written on behalf of ``actor`` (None: the AI)."""
    if actor is None:
        return Message.SenderKind.AI_AGENT, AI_SENDER
    return Message.SenderKind.CS_AGENT, str(actor.pk)


def apply_category(*, ticket: Ticket, value: dict, actor) -> None:
    ticket_triage_set(ticket=ticket, category=value["category"])


def apply_priority(*, ticket: Ticket, value: dict, actor) -> None:
    ticket_triage_set(ticket=ticket, priority=value["priority"])


def apply_strategy(*, ticket: Ticket, value: dict, actor) -> None:
    """A strategy shapes the reply and the escalation; it changes nothing on the ticket."""


def apply_escalation(*, ticket: Ticket, value: dict, actor) -> None:
    if not value.get("escalate"):
        return
    note = f"Escalated to {value['to']} ({value['path']} path), urgency {value['urgency']}."
    ticket_escalate(ticket=ticket, team=value["path"], note=note, sender_id=sender_of(actor)[1])


def apply_reply(*, ticket: Ticket, value: dict, actor) -> None:
    """The reply goes out as the person's when a person sent it (as drafted or edited); the
    internal note is always the AI's."""
    sender_kind, sender_id = sender_of(actor)
    if actor is not None and ticket.assignee_id is None:
        # People own the tickets they answer: from now on the AI only suggests replies here.
        ticket_assign(ticket=ticket, team=ticket.team, assignee=actor)
    message_post(
        ticket=ticket, kind=Message.Kind.EXTERNAL, sender_kind=sender_kind, sender_id=sender_id,
        content=value["reply"],
    )  # fmt: skip
    if value.get("internal_note"):
        message_post(
            ticket=ticket, kind=Message.Kind.INTERNAL, sender_kind=Message.SenderKind.AI_AGENT,
            sender_id=AI_SENDER, content=value["internal_note"],
        )  # fmt: skip


def register() -> None:
    decision_types.applier_register(DecisionType.CATEGORY, apply_category)
    decision_types.applier_register(DecisionType.PRIORITY, apply_priority)
    decision_types.applier_register(DecisionType.STRATEGY, apply_strategy)
    decision_types.applier_register(DecisionType.ESCALATION, apply_escalation)
    decision_types.applier_register(DecisionType.REPLY, apply_reply)

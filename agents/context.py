"""The read-only ticket context every agent of a run works from.

Built once when a run starts and stored on the run (``PipelineRun.context``), so every
step, a retried step too, sees the same facts, and an auditor can see what the agents saw.
"""

from dataclasses import asdict, dataclass
from datetime import datetime

from django.utils import timezone

from agents import llm
from agents.models import AgentDecision, Outage
from agents.tools import extract_entities, outage_matches
from tickets.models import Message, Ticket

RECENT_TICKETS = 5


@dataclass(frozen=True)
class CustomerFacts:
    external_id: str
    name: str
    tier: str
    is_vip: bool
    has_support_entitlement: bool


@dataclass(frozen=True)
class RecentTicket:
    id: int
    subject: str
    category: str
    priority: str
    status: str
    created_at: str


@dataclass(frozen=True)
class OutageFacts:
    id: int
    title: str


@dataclass(frozen=True)
class ConversationLine:
    """One earlier message of the conversation, as the agents read it."""

    who: str  # "customer" or "support"
    text: str
    at: str


@dataclass(frozen=True)
class TicketContext:
    ticket_id: int
    subject: str
    body: str  # the customer's message this turn answers (the first one on turn 1)
    channel: str
    customer: CustomerFacts
    recent_tickets: tuple[RecentTicket, ...]
    # agents.tools.Entities.as_dict(): kind -> values, JSON-safe.
    entities: dict
    outages: tuple[OutageFacts, ...]
    # Turn n of the conversation: the n-th customer message the agents answer.
    turn: int = 1
    # What was written before ``body``, oldest first (the last CONVERSATION_LINES messages).
    conversation: tuple[ConversationLine, ...] = ()
    # The ticket's category and priority as they stand (set, or else as the agents last said).
    category: str = ""
    priority: str = ""

    @property
    def text(self) -> str:
        """What the text models read: subject and first message; on a follow-up, the message
        it answers alone (the subject names the first topic)."""
        return self.body if self.is_follow_up else f"{self.subject}\n{self.body}"

    @property
    def is_follow_up(self) -> bool:
        return self.turn > 1

    def llm_text(self) -> llm.TicketText:
        """The ticket as an LLM prompt carries it: untrusted text, in its delimiters."""
        earlier = "\n\n".join(f"[{line.at}] {line.who}:\n{line.text}" for line in self.conversation)
        return llm.TicketText(subject=self.subject, body=self.body, channel=self.channel, earlier=earlier)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "TicketContext":
        return cls(
            ticket_id=data["ticket_id"],
            subject=data["subject"],
            body=data["body"],
            channel=data["channel"],
            customer=CustomerFacts(**data["customer"]),
            recent_tickets=tuple(RecentTicket(**row) for row in data["recent_tickets"]),
            entities=data["entities"],
            outages=tuple(OutageFacts(**row) for row in data["outages"]),
            # Contexts stored before conversations had turns have none of these.
            turn=data.get("turn", 1),
            conversation=tuple(ConversationLine(**row) for row in data.get("conversation", ())),
            category=data.get("category", ""),
            priority=data.get("priority", ""),
        )


def active_outages(*, at: datetime | None = None) -> list[Outage]:
    at = at or timezone.now()
    return list(Outage.objects.filter(starts_at__lte=at).exclude(ends_at__lte=at))


def context_build(*, ticket: Ticket, message: Message | None = None, turn: int = 1) -> TicketContext:
    """Gather what the agents may know about ``ticket`` for the turn that answers ``message``
    (None: the ticket's first message); never reads the demo answer key."""
    customer = ticket.customer
    recent = (
        Ticket.objects.filter(customer=customer, created_at__lte=ticket.created_at)
        .exclude(pk=ticket.pk)
        .order_by("-created_at", "-id")
        .values("id", "subject", "category", "priority", "status", "created_at")[:RECENT_TICKETS]
    )
    body = message.content if message is not None and turn > 1 else ticket.body
    text = f"{ticket.subject}\n{body}"
    matched = outage_matches(text, [_OutageTerms(o) for o in active_outages()])
    return TicketContext(
        ticket_id=ticket.pk,
        subject=ticket.subject,
        body=body,
        channel=ticket.channel,
        customer=CustomerFacts(
            external_id=customer.external_id,
            name=customer.name,
            tier=customer.tier,
            is_vip=customer.is_vip,
            has_support_entitlement=customer.has_support_entitlement,
        ),
        recent_tickets=tuple(
            RecentTicket(**{**row, "created_at": row["created_at"].isoformat()}) for row in recent
        ),
        entities=extract_entities(text).as_dict(),
        outages=tuple(OutageFacts(id=m.outage.pk, title=m.title) for m in matched),
        turn=turn,
        conversation=_conversation_before(ticket, message) if turn > 1 else (),
        category=ticket.category or _last_label(ticket, "category"),
        priority=ticket.priority or _last_label(ticket, "priority"),
    )


def _last_label(ticket: Ticket, decision_type: str) -> str:
    """What the agents last said for a field a person has not set yet."""
    return (
        AgentDecision.objects.filter(ticket=ticket, decision_type=decision_type)
        .order_by("-created_at", "-id")
        .values_list("label", flat=True)
        .first()
    ) or ""


CONVERSATION_LINES = 10


def _conversation_before(ticket: Ticket, message: Message) -> tuple[ConversationLine, ...]:
    """The messages to and from the customer before ``message``, the latest few, oldest first."""
    earlier = (
        ticket.messages.filter(kind=Message.Kind.EXTERNAL, created_at__lte=message.created_at)
        .exclude(pk=message.pk)
        .order_by("-created_at", "-id")
        .values_list("sender_kind", "content", "created_at")[:CONVERSATION_LINES]
    )
    return tuple(
        ConversationLine(
            who="customer" if kind == Message.SenderKind.CUSTOMER else "support",
            text=content[:2000],
            at=at.isoformat(timespec="minutes"),
        )
        for kind, content, at in reversed(earlier)
    )


class _OutageTerms:
    """An Outage seen through the tools' OutageLike protocol (title + keywords)."""

    def __init__(self, outage: Outage):
        self.outage = outage
        self.title = outage.title
        self.keywords = outage.match_terms

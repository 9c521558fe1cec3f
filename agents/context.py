"""The read-only ticket context every agent of a run works from.

Built once when a run starts and stored on the run (``PipelineRun.context``), so every
step, a retried step too, sees the same facts, and an auditor can see what the agents saw.
"""

from dataclasses import asdict, dataclass
from datetime import datetime

from django.utils import timezone

from agents.models import Outage
from agents.tools import extract_entities, outage_matches
from tickets.models import Ticket

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
class TicketContext:
    ticket_id: int
    subject: str
    body: str
    channel: str
    customer: CustomerFacts
    recent_tickets: tuple[RecentTicket, ...]
    # agents.tools.Entities.as_dict(): kind -> values, JSON-safe.
    entities: dict
    outages: tuple[OutageFacts, ...]

    @property
    def text(self) -> str:
        """What the text models read: subject and body."""
        return f"{self.subject}\n{self.body}"

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
        )


def active_outages(*, at: datetime | None = None) -> list[Outage]:
    at = at or timezone.now()
    return list(Outage.objects.filter(starts_at__lte=at).exclude(ends_at__lte=at))


def context_build(*, ticket: Ticket) -> TicketContext:
    """Gather what the agents may know about ``ticket``; never reads the demo answer key."""
    customer = ticket.customer
    recent = (
        Ticket.objects.filter(customer=customer, created_at__lte=ticket.created_at)
        .exclude(pk=ticket.pk)
        .order_by("-created_at", "-id")
        .values("id", "subject", "category", "priority", "status", "created_at")[:RECENT_TICKETS]
    )
    text = f"{ticket.subject}\n{ticket.body}"
    matched = outage_matches(text, [_OutageTerms(o) for o in active_outages()])
    return TicketContext(
        ticket_id=ticket.pk,
        subject=ticket.subject,
        body=ticket.body,
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
    )


class _OutageTerms:
    """An Outage seen through the tools' OutageLike protocol (title + keywords)."""

    def __init__(self, outage: Outage):
        self.outage = outage
        self.title = outage.title
        self.keywords = outage.match_terms

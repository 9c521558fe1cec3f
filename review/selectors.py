"""Reads for the review console: the queue, one item, a ticket's timeline, ticket search."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.core.exceptions import PermissionDenied
from django.db.models import Case, Count, F, IntegerField, Q, QuerySet, Value, When
from django.shortcuts import get_object_or_404
from django.utils import timezone

from agents import decision_types
from agents.models import AgentDecision
from autonomy.models import ReviewItem
from review.roles import WORK_QUEUE
from tickets.models import Message, Priority, Ticket

PAGE_SIZE = 25

# --- the queue ---------------------------------------------------------------------------

AGES = {"1h": timedelta(hours=1), "4h": timedelta(hours=4), "1d": timedelta(days=1), "3d": timedelta(days=3)}

_SLA_RANK = Case(
    When(ticket__sla_state=Ticket.SLAState.BREACHED, then=Value(0)),
    When(ticket__sla_state=Ticket.SLAState.AT_RISK, then=Value(1)),
    default=Value(2),
    output_field=IntegerField(),
)
_PRIORITY_RANK = Case(
    *[When(ticket__priority=p, then=Value(rank)) for rank, p in enumerate(Priority.values)],
    default=Value(len(Priority.values)),
    output_field=IntegerField(),
)
# The deadline that counts now: first response until it is sent, then resolution.
_DUE = Case(
    When(ticket__first_response_at__isnull=True, then=F("ticket__first_response_due")),
    default=F("ticket__resolution_due"),
)
QUEUE_ORDER = ["sla_rank", "due", "priority_rank", F("uncertainty").desc(), "created_at", "id"]


@dataclass(frozen=True)
class QueueFilters:
    decision_type: str = ""
    category: str = ""
    priority: str = ""
    age: str = ""


def queue_items(*, filters: QueueFilters = QueueFilters(), now: datetime | None = None) -> QuerySet:
    """Pending items, most urgent first: SLA breached > at risk > on time, then the nearest
    deadline, then priority (CRITICAL first), then the most uncertain.

    Reads the pending rows through the partial indexes on review items (pending by type,
    pending by age) and joins each item's ticket and customer in the same query.
    """
    items = ReviewItem.objects.filter(status=ReviewItem.Status.PENDING)
    if filters.decision_type:
        items = items.filter(decision_type=filters.decision_type)
    if filters.category:
        items = items.filter(ticket__category=filters.category)
    if filters.priority:
        items = items.filter(ticket__priority=filters.priority)
    if filters.age:
        items = items.filter(created_at__lte=(now or timezone.now()) - AGES[filters.age])
    return (
        items.select_related("ticket", "ticket__customer", "claimed_by")
        .annotate(sla_rank=_SLA_RANK, priority_rank=_PRIORITY_RANK, due=_DUE)
        .order_by(*QUEUE_ORDER)
    )


def queue_page(*, filters: QueueFilters, page: int) -> tuple[list[ReviewItem], bool]:
    """One page of the queue and whether another follows (LIMIT n+1: no COUNT over 10k rows).

    Two queries: the order over every pending item is worked out on narrow rows (ids and
    sort keys), then only the page's items are read with their tickets and customers. With
    10k pending items that halves the time of sorting whole rows (bench/console.py).
    """
    start = (page - 1) * PAGE_SIZE
    ids = list(queue_items(filters=filters).values_list("id", flat=True)[start : start + PAGE_SIZE + 1])
    rows = {item.pk: item for item in queue_items().filter(pk__in=ids[:PAGE_SIZE])}
    return [rows[pk] for pk in ids[:PAGE_SIZE] if pk in rows], len(ids) > PAGE_SIZE


def queue_counts() -> list[tuple[str, int]]:
    """Pending items per decision type, every registered type listed (zero included)."""
    counts = dict(
        ReviewItem.objects.filter(status=ReviewItem.Status.PENDING)
        .values_list("decision_type")
        .annotate(n=Count("id"))
        .order_by()
    )
    return [(name, counts.get(name, 0)) for name in decision_types.names()]


def _available(user, now: datetime) -> Q:
    return Q(claimed_by__isnull=True) | Q(claimed_until__lt=now) | Q(claimed_by=user)


NEIGHBOUR_WINDOW = 500


def queue_neighbours(*, item: ReviewItem, user) -> tuple[int | None, int | None]:
    """(previous, next) item ids around ``item`` among those ``user`` may take, in queue
    order; when ``item`` is no longer pending, next is the top of the queue."""
    ids = list(
        queue_items().filter(_available(user, timezone.now())).values_list("id", flat=True)[:NEIGHBOUR_WINDOW]
    )
    if item.pk not in ids:
        return None, next(iter(ids), None)
    at = ids.index(item.pk)
    return (ids[at - 1] if at else None), (ids[at + 1] if at + 1 < len(ids) else None)


def next_item_id(*, user, after: ReviewItem | None = None) -> int | None:
    """The item ``user`` should work next."""
    if after is not None:
        return queue_neighbours(item=after, user=user)[1]
    return queue_items().filter(_available(user, timezone.now())).values_list("id", flat=True).first()


# --- one item ------------------------------------------------------------------------------


def get_review_item_for_user(user, item_id: int) -> ReviewItem:
    """The review item if ``user`` may work the queue: 404 when missing, 403 without the role."""
    if not user.has_perm(WORK_QUEUE):
        raise PermissionDenied
    return get_object_or_404(
        ReviewItem.objects.select_related(
            "decision", "decision__disposition", "ticket", "ticket__customer", "claimed_by", "decided_by"
        ),
        pk=item_id,
    )


# --- the ticket timeline ------------------------------------------------------------------


@dataclass(frozen=True)
class TimelineEntry:
    at: datetime
    kind: str  # "external", "internal" or "decision"
    message: Message | None = None
    decision: AgentDecision | None = None

    @property
    def hidden(self) -> bool:
        """A phase-1 decision still waiting for its person: its answer must not be shown."""
        item = getattr(self.decision, "review_item", None)
        return bool(item and not item.show_suggestion and item.status == ReviewItem.Status.PENDING)


def ticket_timeline(*, ticket: Ticket) -> list[TimelineEntry]:
    """External messages, internal notes and every agent decision (with its disposition and
    review) merged in time order; two queries whatever the length."""
    entries = [TimelineEntry(at=m.created_at, kind=m.kind, message=m) for m in ticket.messages.all()]
    decisions = AgentDecision.objects.filter(ticket=ticket).select_related(
        "disposition", "review_item", "review_item__decided_by"
    )
    entries += [TimelineEntry(at=d.created_at, kind="decision", decision=d) for d in decisions]
    return sorted(entries, key=lambda e: (e.at, e.kind != "decision"))


def customer_recent_tickets(*, ticket: Ticket, limit: int = 5) -> list[Ticket]:
    return list(
        Ticket.objects.filter(customer_id=ticket.customer_id)
        .exclude(pk=ticket.pk)
        .order_by("-created_at", "-id")
        .only("id", "subject", "status", "created_at")[:limit]
    )


# --- ticket search ------------------------------------------------------------------------

SEARCH_LIMIT = 50


def ticket_search(*, q: str) -> list[Ticket]:
    """Tickets by id ("123" or "#123"), customer name or external id, or text; newest first."""
    q = q.strip()
    tickets = Ticket.objects.select_related("customer").order_by("-created_at", "-id")
    if not q:
        return list(tickets[:SEARCH_LIMIT])
    match = Q(customer__name__icontains=q) | Q(customer__external_id=q) | Q(external_id=q)
    match |= Q(subject__icontains=q) | Q(body__icontains=q)
    if q.lstrip("#").isdigit() and len(q) < 19:  # a bigint
        match |= Q(pk=int(q.lstrip("#")))
    return list(tickets.filter(match)[:SEARCH_LIMIT])

"""Reads for the review console: the queue, one item, a ticket's timeline, ticket search."""

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.db.models import Case, Count, F, IntegerField, Max, Min, Q, QuerySet, Value, When
from django.shortcuts import get_object_or_404
from django.utils import timezone

from agents import decision_types
from agents.models import AgentDecision
from autonomy.models import ReviewItem
from review.roles import WORK_QUEUE
from tickets.models import Delivery, Message, Priority, Ticket
from tickets.selectors import message_mail_file

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
QUEUE_ORDER = ["sla_rank", "due", "priority_rank", F("uncertainty").desc(), "waiting_since", "ticket_id"]


@dataclass(frozen=True)
class QueueFilters:
    decision_type: str = ""
    category: str = ""
    priority: str = ""
    age: str = ""


def _pending_items(*, filters: QueueFilters, now: datetime) -> QuerySet:
    items = ReviewItem.objects.filter(status=ReviewItem.Status.PENDING)
    if filters.decision_type:
        items = items.filter(decision_type=filters.decision_type)
    if filters.category:
        items = items.filter(ticket__category=filters.category)
    if filters.priority:
        items = items.filter(ticket__priority=filters.priority)
    if filters.age:
        items = items.filter(created_at__lte=now - AGES[filters.age])
    return items


def queue_order(
    *, filters: QueueFilters = QueueFilters(), user=None, now: datetime | None = None
) -> QuerySet:
    """Tickets with pending review items, one row each, most urgent first: SLA breached >
    at risk > on time, then the nearest deadline, then priority (CRITICAL first), then the
    most uncertain of its decisions, then the longest waiting. Rows are ``ticket_id`` and
    the sort keys; with ``user``, only tickets nobody else holds.

    Groups the pending rows (partial indexes on review items: pending by type, by age) by
    ticket; the ticket's own columns are constant within a group, so ``Min`` reads them.
    """
    now = now or timezone.now()
    items = _pending_items(filters=filters, now=now)
    if user is not None:
        items = items.filter(_available(user, now))
    return (
        items.values("ticket_id")
        .annotate(
            sla_rank=Min(_SLA_RANK),
            due=Min(_DUE),
            priority_rank=Min(_PRIORITY_RANK),
            uncertainty=Max("uncertainty"),
            waiting_since=Min("created_at"),
        )
        .order_by(*QUEUE_ORDER)
    )


@dataclass(frozen=True)
class QueueRow:
    """One ticket in the queue, with what waits on it."""

    ticket: Ticket
    items: list[ReviewItem]
    due: datetime
    uncertainty: float
    waiting_since: datetime
    holders: list  # other people holding the ticket's review now


def queue_page(*, filters: QueueFilters, page: int, user, now: datetime) -> tuple[list[QueueRow], bool]:
    """One page of the queue and whether another follows (LIMIT n+1: no COUNT over 10k rows).

    Three queries: the order over every pending item, grouped by ticket, on narrow rows;
    the page's tickets with their customers; their pending items.
    """
    start = (page - 1) * PAGE_SIZE
    keys = list(queue_order(filters=filters)[start : start + PAGE_SIZE + 1])
    shown = keys[:PAGE_SIZE]
    ids = [row["ticket_id"] for row in shown]
    tickets = Ticket.objects.select_related("customer").in_bulk(ids)
    items: dict[int, list[ReviewItem]] = {}
    pending = ReviewItem.objects.filter(ticket_id__in=ids, status=ReviewItem.Status.PENDING)
    for item in pending.select_related("claimed_by").order_by("created_at", "id"):
        items.setdefault(item.ticket_id, []).append(item)
    rows = [
        QueueRow(
            ticket=tickets[row["ticket_id"]],
            items=_in_pipeline_order(items.get(row["ticket_id"], [])),
            due=row["due"],
            uncertainty=row["uncertainty"],
            waiting_since=row["waiting_since"],
            holders=_holders(items.get(row["ticket_id"], []), user=user, now=now),
        )
        for row in shown
        if row["ticket_id"] in tickets
    ]
    return rows, len(keys) > PAGE_SIZE


def _holders(items: list[ReviewItem], *, user, now: datetime) -> list:
    held = {item.claimed_by for item in items if item.claimed_until and item.claimed_until > now}
    return sorted((holder for holder in held if holder and holder.pk != user.pk), key=str)


def _in_pipeline_order(items: list[ReviewItem]) -> list[ReviewItem]:
    order = decision_types.names()
    return sorted(
        items, key=lambda item: order.index(item.decision_type) if item.decision_type in order else 99
    )


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


def queue_neighbours(*, ticket: Ticket, user) -> tuple[int | None, int | None]:
    """(previous, next) ticket ids around ``ticket`` among those ``user`` may take, in queue
    order; when nothing waits on ``ticket`` any more, next is the top of the queue."""
    ids = [row["ticket_id"] for row in queue_order(user=user)[:NEIGHBOUR_WINDOW]]
    if ticket.pk not in ids:
        return None, next(iter(ids), None)
    at = ids.index(ticket.pk)
    return (ids[at - 1] if at else None), (ids[at + 1] if at + 1 < len(ids) else None)


def next_ticket_id(*, user, after: Ticket | None = None) -> int | None:
    """The ticket ``user`` should review next (after ``after``)."""
    if after is not None:
        return queue_neighbours(ticket=after, user=user)[1]
    row = queue_order(user=user).first()
    return row["ticket_id"] if row else None


# --- one ticket's review ---------------------------------------------------------------------


def get_review_item_for_user(user, item_id: int) -> ReviewItem:
    """The review item if ``user`` may work the queue: 404 when missing, 403 without the role."""
    if not user.has_perm(WORK_QUEUE):
        raise PermissionDenied
    return get_object_or_404(ReviewItem.objects.select_related("ticket"), pk=item_id)


def get_review_ticket_for_user(user, ticket_id: int) -> Ticket:
    """The ticket to review if ``user`` may work the queue: 404 when missing, 403 without the role."""
    if not user.has_perm(WORK_QUEUE):
        raise PermissionDenied
    return get_object_or_404(Ticket.objects.select_related("customer", "assignee"), pk=ticket_id)


def review_pending(*, ticket: Ticket) -> list[ReviewItem]:
    """What waits for a person on ``ticket``, in pipeline order, with the decisions."""
    items = ReviewItem.objects.filter(ticket=ticket, status=ReviewItem.Status.PENDING).select_related(
        "decision", "decision__disposition", "claimed_by"
    )
    return _in_pipeline_order(list(items))


def review_revealed(*, ticket: Ticket, user) -> list[ReviewItem]:
    """Phase-1 items ``user`` answered on ``ticket`` lately: the AI's answers, hidden while
    they answered, revealed now with whether they agreed (a drafted text, to be rated)."""
    since = timezone.now() - REVEAL_FOR
    items = ReviewItem.objects.filter(
        ticket=ticket,
        decided_by=user,
        show_suggestion=False,
        status=ReviewItem.Status.DONE,
        decided_at__gte=since,
    ).select_related("decision")
    return sorted(
        _in_pipeline_order(list(items)), key=lambda item: bool(item.draft_rating or not _drafts(item))
    )


def _drafts(item: ReviewItem) -> bool:
    return decision_types.get(item.decision_type).drafts_text


# How long after answering a phase-1 ticket its reviewer sees the revealed answers on it.
REVEAL_FOR = timedelta(hours=1)


# --- the ticket timeline ------------------------------------------------------------------


@dataclass(frozen=True)
class TimelineEntry:
    at: datetime
    kind: str  # "external", "internal" or "decision"
    message: Message | None = None
    decision: AgentDecision | None = None
    author: str = ""  # the person who wrote a message, when a person did
    turn: int = 0  # the conversation's turn: a customer's message opens the next
    opens_turn: bool = False
    latest: bool = False  # in the latest turn of a conversation of several
    has_mail: bool = False  # `make run`'s SMTP sink kept the mail it went out as

    @property
    def hidden(self) -> bool:
        """A phase-1 decision still waiting for its person: its answer must not be shown."""
        item = getattr(self.decision, "review_item", None)
        return bool(item and item.hides_answer)


def ticket_timeline(*, ticket: Ticket) -> list[TimelineEntry]:
    """External messages, internal notes and every agent decision (with its disposition and
    review) merged in time order, each message with who wrote it; three queries whatever
    the length."""
    messages = list(ticket.messages.all())
    people = [m.sender_id for m in messages if m.sender_kind == Message.SenderKind.CS_AGENT]
    names = dict(
        get_user_model()
        .objects.filter(pk__in=[int(pk) for pk in people if pk.isdigit()])
        .values_list("pk", "username")
    )
    entries = [
        TimelineEntry(
            at=m.created_at,
            kind=m.kind,
            message=m,
            author=names.get(int(m.sender_id), "") if m.sender_id.isdigit() else "",
            has_mail=m.delivery == Delivery.SENT and message_mail_file(message=m) is not None,
        )
        for m in messages
    ]
    decisions = AgentDecision.objects.filter(ticket=ticket).select_related(
        "disposition", "review_item", "review_item__decided_by"
    )
    entries += [TimelineEntry(at=d.created_at, kind="decision", decision=d) for d in decisions]
    return _in_turns(sorted(entries, key=lambda e: (e.at, e.kind != "decision")))


def _in_turns(entries: list[TimelineEntry]) -> list[TimelineEntry]:
    """Each entry with the turn it belongs to: a customer's message opens the next turn; the
    latest turn is marked (the one a person answers now)."""
    turn, numbered = 0, []
    for entry in entries:
        message = entry.message
        if (
            message
            and message.kind == Message.Kind.EXTERNAL
            and message.sender_kind == Message.SenderKind.CUSTOMER
        ):
            turn += 1
            entry = replace(entry, opens_turn=True)
        numbered.append(replace(entry, turn=turn))
    return [replace(entry, latest=turn > 1 and entry.turn == turn) for entry in numbered]


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

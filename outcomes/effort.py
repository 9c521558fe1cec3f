"""Human effort: how many minutes people spent on a ticket, and who handled it.

From what is already recorded, never from a timer of its own:

- **review passes**: a reviewer claims a ticket and answers its pending decisions in one
  pass; every item of the pass stores its seconds from the claim to the answer
  (``ReviewItem.seconds_to_decide``) and keeps the claim's ``claimed_until``. A pass counts
  once — its longest item — and at most ``CSAI_EFFORT_REVIEW_CAP_MINUTES``, so a claim left
  open over lunch is not an afternoon of work. An answer given without a claim (``manage.py
  simulate`` passes its own seconds) is a pass of its own.
- **replies people wrote** outside a review pass (the ticket page, a request for
  information): no time is recorded, so each counts ``CSAI_EFFORT_REPLY_MINUTES``. A reply
  sent from a review pass (the draft as is, or edited) is in the pass's time already.
- **escalations**: an escalated ticket goes to a team that handles it outside CSAI; it
  counts ``CSAI_EFFORT_ESCALATION_MINUTES``.

Who handled it: **AI only** (the AI acted on its own — an automatically applied decision,
a reply it sent, a resolution — and no person spent time), **AI + person**, **person only**
(people spent time and the AI applied nothing on its own: suggestions a person accepted are
the person's work), or **not handled yet**.

Everything is one SQL statement with a CTE per source, aggregated by the database: the
caller adds the ``GROUP BY`` it needs (``EFFORT_CTE`` ends in ``per_ticket``).
"""

from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db import connection, transaction

from agents.decision_types import ReplyAnswer
from agents.models import AgentDecision
from agents.services import HISTORY_CUSTOMER
from autonomy.models import Disposition, ReviewItem
from tickets.models import Customer, Message, Ticket


class Attribution:
    AI_ONLY = "ai_only"
    AI_AND_PERSON = "ai_and_person"
    PERSON_ONLY = "person_only"
    UNTOUCHED = "untouched"

    LABELS = {
        AI_ONLY: "AI only",
        AI_AND_PERSON: "AI + person",
        PERSON_ONLY: "person only",
        UNTOUCHED: "not handled yet",
    }


@dataclass(frozen=True)
class EffortRates:
    """The cap and the per-event estimates, in minutes (csai/settings.py)."""

    review_cap: float
    reply: float
    escalation: float

    @classmethod
    def from_settings(cls) -> "EffortRates":
        return cls(
            review_cap=float(settings.CSAI_EFFORT_REVIEW_CAP_MINUTES),
            reply=float(settings.CSAI_EFFORT_REPLY_MINUTES),
            escalation=float(settings.CSAI_EFFORT_ESCALATION_MINUTES),
        )

    def params(self) -> dict:
        return {
            "review_cap_seconds": self.review_cap * 60,
            "reply_minutes": self.reply,
            "escalation_minutes": self.escalation,
        }


def _tables() -> dict:
    return {
        "ticket": Ticket._meta.db_table,
        "customer": Customer._meta.db_table,
        "item": ReviewItem._meta.db_table,
        "message": Message._meta.db_table,
        "decision": AgentDecision._meta.db_table,
        "disposition": Disposition._meta.db_table,
    }


# Per-ticket effort of the team's tickets created in [start, end) (imported history is not
# the team's work). Review items, messages and dispositions come after their ticket: each
# source is read from ``start`` on by itself, and the tickets of the period pick theirs.
# Parameters: start, end, history, review_cap_seconds, reply_minutes, escalation_minutes,
# reply_type, sent_labels, applied_kinds.
EFFORT_CTE = """
WITH t AS (
    SELECT tk.id, tk.created_at, tk.escalated_at, tk.resolved_at, tk.resolved_by,
           tk.reopened_count, tk.first_response_at
    FROM {ticket} tk JOIN {customer} c ON c.id = tk.customer_id
    WHERE tk.created_at >= %(start)s AND tk.created_at < %(end)s AND c.external_id <> %(history)s
),
passes AS (
    SELECT r.ticket_id,
           MAX(LEAST(r.seconds_to_decide, %(review_cap_seconds)s)) AS seconds,
           COUNT(*) FILTER (
               WHERE r.decision_type = %(reply_type)s AND r.kind = 'decide'
               AND r.human_label = ANY(%(sent_labels)s)
           ) AS replies
    FROM {item} r
    WHERE r.status = 'done' AND r.decided_by_id IS NOT NULL AND r.seconds_to_decide IS NOT NULL
        AND r.created_at >= %(start)s
    GROUP BY r.ticket_id, r.decided_by_id, r.claimed_until,
             CASE WHEN r.claimed_until IS NULL THEN r.id END
),
review AS (
    SELECT ticket_id, SUM(seconds) AS seconds, SUM(replies) AS replies, COUNT(*) AS passes
    FROM passes GROUP BY ticket_id
),
msgs AS (
    SELECT m.ticket_id,
           COUNT(*) FILTER (WHERE m.sender_kind <> 'ai_agent') AS person_replies,
           COUNT(*) FILTER (WHERE m.sender_kind = 'ai_agent') AS ai_replies,
           MIN(m.delivered_at) FILTER (WHERE m.sender_kind = 'ai_agent') AS ai_first,
           MIN(m.delivered_at) FILTER (WHERE m.sender_kind <> 'ai_agent') AS person_first
    FROM {message} m
    WHERE m.kind = 'external' AND m.sender_kind IN ('cs_agent', 'technical', 'ai_agent')
        AND m.created_at >= %(start)s
    GROUP BY m.ticket_id
),
auto AS (
    SELECT d.ticket_id
    FROM {disposition} p JOIN {decision} d ON d.id = p.decision_id
    WHERE p.kind = ANY(%(applied_kinds)s) AND p.created_at >= %(start)s
    GROUP BY d.ticket_id
),
parts AS (
    SELECT t.*,
           COALESCE(rv.seconds, 0) / 60.0 AS review_minutes,
           COALESCE(rv.passes, 0) AS passes,
           GREATEST(COALESCE(ms.person_replies, 0) - COALESCE(rv.replies, 0), 0) AS replies_outside,
           (t.escalated_at IS NOT NULL) AS escalated,
           CASE
               WHEN ms.ai_first IS NOT NULL AND (ms.person_first IS NULL OR ms.ai_first <= ms.person_first)
                   THEN 'ai'
               WHEN ms.person_first IS NOT NULL THEN 'person'
           END AS first_sender,
           (au.ticket_id IS NOT NULL OR COALESCE(ms.ai_replies, 0) > 0 OR t.resolved_by = 'ai') AS ai_acted
    FROM t
    LEFT JOIN review rv ON rv.ticket_id = t.id
    LEFT JOIN msgs ms ON ms.ticket_id = t.id
    LEFT JOIN auto au ON au.ticket_id = t.id
),
per_ticket AS (
    SELECT parts.*,
           review_minutes + replies_outside * %(reply_minutes)s
               + CASE WHEN escalated THEN %(escalation_minutes)s ELSE 0 END AS minutes,
           CASE
               WHEN passes > 0 OR replies_outside > 0 OR escalated THEN
                   CASE WHEN ai_acted THEN 'ai_and_person' ELSE 'person_only' END
               WHEN ai_acted THEN 'ai_only'
               ELSE 'untouched'
           END AS attribution
    FROM parts
)
"""


def run_effort_query(
    select: str, *, start: datetime, end: datetime, extra: dict | None = None
) -> list[tuple]:
    """Rows of ``select`` over ``per_ticket``, in one statement.

    Without parallel workers: each would aggregate every source again for its share of the
    tickets (the aggregates are the inner sides of the joins), which on a small machine
    costs more than it saves (bench/README.md, console bench).
    """
    sql, params = effort_query(select, start=start, end=end)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL max_parallel_workers_per_gather = 0")
        cursor.execute(sql, {**params, **(extra or {})})
        return cursor.fetchall()


def effort_query(select: str, *, start: datetime, end: datetime, rates: EffortRates | None = None):
    """``EFFORT_CTE`` followed by ``select`` (which reads ``per_ticket``), and its parameters."""
    params = {
        "start": start,
        "end": end,
        "history": HISTORY_CUSTOMER,
        "reply_type": "reply",
        "sent_labels": [ReplyAnswer.SENT.value, ReplyAnswer.EDITED.value],
        "applied_kinds": [
            Disposition.Kind.AUTO_APPLIED.value,
            Disposition.Kind.AUTO_APPLIED_WITH_REVIEW.value,
        ],
        **(rates or EffortRates.from_settings()).params(),
    }
    return EFFORT_CTE.format(**_tables()) + select, params


@dataclass(frozen=True)
class TicketEffort:
    ticket_id: int
    minutes: float
    review_minutes: float
    replies_outside_review: int
    escalated: bool
    attribution: str


def ticket_efforts(*, start: datetime, end: datetime) -> dict[int, TicketEffort]:
    """Every ticket created in [start, end) with its human minutes and who handled it (one
    query; for a ticket's page, an export or a check — the dashboard aggregates by day)."""
    rows = run_effort_query(
        "SELECT id, minutes, review_minutes, replies_outside, escalated, attribution FROM per_ticket",
        start=start,
        end=end,
    )
    return {
        row[0]: TicketEffort(row[0], float(row[1]), float(row[2]), row[3], row[4], row[5]) for row in rows
    }

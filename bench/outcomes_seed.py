"""Outcome history at scale, written by PostgreSQL itself (``generate_series``): tickets over
``days`` days with their first message and first reply, a pipeline run and a category
decision, its disposition, the review a person answered (with claim-to-decision times) or
the sampled review of what the AI applied, and CSAT surveys.

The story: the AI handles a growing share on its own (a quarter of the tickets on the first
day, about two thirds on the last), people answer the rest in review passes of half a minute
to ten minutes (one in twenty claims is abandoned for hours), one ticket in twelve of theirs
is escalated; customers rate AI resolutions a little lower than people's. Deterministic for
``seed``. Used by ``bench/console.py`` (a million tickets over 90 days) and by the dashboard's
browser test (demo-like data for its screenshot).

Writes plain rows, as a test factory does: no events, no tasks. Takes about a minute per
million tickets per table on two cores.
"""

import sys
import time
from datetime import datetime

GEN = """
CREATE TEMP TABLE bench_gen AS
SELECT n,
       nextval(pg_get_serial_sequence('{ticket}', 'id')) AS ticket_id,
       nextval(pg_get_serial_sequence('{run}', 'id')) AS run_id,
       nextval(pg_get_serial_sequence('{decision}', 'id')) AS decision_id,
       created, age_hours,
       random() < 0.25 + 0.42 * progress AS ai,
       random() AS r_res, random() AS r_time, random() AS r_misc, random() AS r_score, random() AS r_claim
FROM (
    SELECT n, %(now)s - make_interval(secs => age) AS created, age / 3600.0 AS age_hours,
           1 - age / (%(days)s * 86400.0) AS progress
    FROM (SELECT n, random() * %(days)s * 86400.0 AS age FROM generate_series(1, %(tickets)s) AS n) AS a
) AS b
"""

# Derived per ticket: resolved (most, once a day old), escalated, first response, resolution.
SHAPE = """
CREATE TEMP TABLE bench_t AS
SELECT g.*,
       NOT ai AND r_misc < 0.08 AS escalated,
       r_misc > 0.96 AS reopened,
       r_res < 0.9 * LEAST(1.0, age_hours / 24.0) AS resolved,
       created + make_interval(secs => CASE WHEN ai THEN 60 + r_time * 540 ELSE 900 + r_time * 20000 END)
           AS first_response,
       created + make_interval(secs => CASE WHEN ai THEN 1800 + r_time * 40000 ELSE 7200 + r_time * 90000 END)
           AS resolution,
       CASE WHEN r_claim < 0.05 THEN 3600 + r_claim * 200000 ELSE 30 + r_claim * 600 END AS review_seconds,
       CASE WHEN n %% 33 = 0 THEN 'CRITICAL' WHEN n %% 3 = 0 THEN 'HIGH' ELSE 'MEDIUM' END AS priority
FROM bench_gen g
"""

TICKETS = """
INSERT INTO {ticket} (id, source, external_id, customer_id, subject, body, channel, status, category,
    priority, team, stage, first_response_due, resolution_due, sla_state, correlation_id, metadata,
    created_at, first_response_at, resolved_at, resolved_by, reopened_count, escalated_at, updated_at)
SELECT ticket_id, %(source)s, 'o' || n, (%(customer_ids)s::bigint[])[1 + n %% %(customers)s],
    'Outcome bench ticket', 'Card declined at checkout, error ERR_PAYMENT_402.', 'email',
    CASE WHEN resolved AND resolution <= %(now)s THEN 'resolved'
         WHEN escalated THEN 'escalated' ELSE 'open' END,
    'BILLING_INQUIRY', priority, '', 'end', created + interval '8 hours', created + interval '2 days',
    'on_time',
    'bench', '{{}}', created, CASE WHEN first_response <= %(now)s THEN first_response END,
    CASE WHEN resolved AND resolution <= %(now)s THEN resolution END,
    CASE WHEN resolved AND resolution <= %(now)s THEN CASE WHEN ai THEN 'ai' ELSE 'person' END ELSE '' END,
    CASE WHEN reopened THEN 1 ELSE 0 END,
    CASE WHEN escalated THEN created + interval '1 hour' END, created
FROM bench_t
"""

MESSAGES = """
INSERT INTO {message} (ticket_id, kind, sender_kind, sender_id, content, external_id, email_message_id,
    metadata, created_at, delivery, delivery_error, delivery_attempts, delivered_at)
SELECT ticket_id, 'external', 'customer', '', 'Card declined at checkout.', '', '', '{{}}'::jsonb,
    created, '', '', 0, NULL
FROM bench_t
UNION ALL
SELECT ticket_id, 'external', CASE WHEN ai THEN 'ai_agent' ELSE 'cs_agent' END, '', 'We are on it.', '', '',
    '{{}}'::jsonb, first_response, 'sent', '', 1, first_response
FROM bench_t WHERE first_response <= %(now)s
"""

RUNS = """
INSERT INTO {run} (id, ticket_id, number, status, context, correlation_id, started_at, finished_at,
    updated_at)
SELECT run_id, ticket_id, 1, 'done', '{{}}', 'bench', created, created, created FROM bench_t
"""

DECISIONS = """
INSERT INTO {decision} (id, ticket_id, run_id, agent, decision_type, value, label, raw_confidence,
    out_of_scope, guardrail_violations, reasoning, evidence, provider, model_name, prompt_version,
    latency_ms, input_tokens, output_tokens, cost_usd, correlation_id, created_at)
SELECT decision_id, ticket_id, run_id, 'classifier', 'category', '{{"category": "BILLING_INQUIRY"}}',
    'BILLING_INQUIRY', CASE WHEN ai THEN 0.9 ELSE 0.6 END, false, '[]', 'bench', '{{}}', 'local', '', '',
    1, 0, 0, 0, 'bench', created
FROM bench_t
"""

DISPOSITIONS = """
INSERT INTO {disposition} (decision_id, kind, phase, threshold, reason, applied, created_at)
SELECT decision_id,
    CASE WHEN NOT ai THEN 'suggested' WHEN r_score < 0.1 THEN 'auto_applied_with_review'
         ELSE 'auto_applied' END,
    CASE WHEN ai THEN 3 ELSE 2 END, 0.8, '', ai, created
FROM bench_t
"""

# A person's review pass (claim to answer); for the AI's tickets, one sampled review in ten.
REVIEWS = """
INSERT INTO {item} (decision_id, ticket_id, decision_type, kind, status, show_suggestion, uncertainty,
    sampling_rate, claimed_by_id, claimed_until, outcome, human_label, decided_by_id, decided_at,
    seconds_to_decide, draft_rating, created_at)
SELECT decision_id, ticket_id, 'category', CASE WHEN ai THEN 'delayed_review' ELSE 'decide' END, 'done', true,
    0.2, CASE WHEN ai THEN 0.1 ELSE 1.0 END, %(reviewer)s,
    created + interval '5 minutes' + interval '10 minutes',
    CASE WHEN r_res > 0.97 THEN 'overridden' ELSE 'confirmed' END, 'BILLING_INQUIRY', %(reviewer)s,
    created + interval '5 minutes' + make_interval(secs => review_seconds), review_seconds, '', created
FROM bench_t
WHERE (NOT ai OR r_score < 0.1)
    AND created + interval '5 minutes' + make_interval(secs => review_seconds) <= %(now)s
"""

# One survey per resolution; three in ten answered, people's resolutions rated a little higher.
SURVEYS = """
INSERT INTO {survey} (ticket_id, resolved_by, sent_at, expires_at, score, comment, answered_at, source)
SELECT ticket_id, CASE WHEN ai THEN 'ai' ELSE 'person' END, resolution, resolution + interval '14 days',
    CASE WHEN r_score < 0.3 THEN
        CASE WHEN r_claim < (CASE WHEN ai THEN 0.06 ELSE 0.05 END) THEN 1
             WHEN r_claim < (CASE WHEN ai THEN 0.12 ELSE 0.10 END) THEN 2
             WHEN r_claim < (CASE WHEN ai THEN 0.23 ELSE 0.20 END) THEN 3
             WHEN r_claim < (CASE WHEN ai THEN 0.53 ELSE 0.50 END) THEN 4 ELSE 5 END
    END, '', CASE WHEN r_score < 0.3 THEN resolution + interval '2 hours' END, 'survey'
FROM bench_t WHERE resolved AND resolution <= %(now)s
"""


def _tables() -> dict:
    from agents.models import AgentDecision, PipelineRun
    from autonomy.models import Disposition, ReviewItem
    from outcomes.models import Survey
    from tickets.models import Message, Ticket

    return {
        "ticket": Ticket._meta.db_table,
        "message": Message._meta.db_table,
        "run": PipelineRun._meta.db_table,
        "decision": AgentDecision._meta.db_table,
        "disposition": Disposition._meta.db_table,
        "item": ReviewItem._meta.db_table,
        "survey": Survey._meta.db_table,
    }


def seed_outcomes(
    *, source: str, tickets: int, days: int, reviewer_id: int, now: datetime, seed: float = 0.42, quiet=False
) -> dict:
    """Write the history; return how many rows of each kind and the seconds each took."""
    from django.db import connection, transaction

    from tickets.models import Customer

    customers = list(Customer.objects.order_by("id").values_list("id", flat=True)[:2000])
    if not customers:
        customers = [
            Customer.objects.create(external_id=f"{source}-c", name="Bench customer", tier="STANDARD").pk
        ]
    Customer.objects.filter(pk__in=customers[1::50]).update(is_vip=True)  # one in fifty
    params = {
        "now": now,
        "days": days,
        "tickets": tickets,
        "source": source,
        "customer_ids": customers,
        "customers": len(customers),
        "reviewer": reviewer_id,
    }
    tables = _tables()
    counts, seconds = {}, {}
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT setseed(%s)", [seed])
        for name, sql in (
            ("generate", GEN),
            ("shape", SHAPE),
            ("tickets", TICKETS),
            ("messages", MESSAGES),
            ("runs", RUNS),
            ("decisions", DECISIONS),
            ("dispositions", DISPOSITIONS),
            ("review_items", REVIEWS),
            ("surveys", SURVEYS),
        ):
            started = time.perf_counter()
            cursor.execute(sql.format(**tables), params)
            counts[name], seconds[name] = cursor.rowcount, round(time.perf_counter() - started, 1)
            if not quiet:
                print(f"  outcomes: {name} {cursor.rowcount} rows in {seconds[name]} s", file=sys.stderr)
        cursor.execute("DROP TABLE bench_gen, bench_t")
    return {"rows": {k: v for k, v in counts.items() if k not in ("generate", "shape")}, "seconds": seconds}

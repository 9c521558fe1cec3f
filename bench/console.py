"""Console benchmark: server time of the review queue, the review page and the supervisor
dashboard at scale.

Seeds ``--tickets`` tickets (100k by default) of which ``--pending`` (10k) have a pending
review item and ``--done`` (20k) a decided one, then times requests through Django's test
client in this process (middleware, session, permissions, queries, template rendering: the
server's whole share, without a network hop): the queue's first page, a deep page, a
filtered page, the live counts, and review pages (each opening claims the ticket).

Then it adds ``--outcome-tickets`` (a million) tickets over ``--outcome-days`` (90) days with
their outcomes — replies, decisions, dispositions, review passes, CSAT surveys — written by
PostgreSQL itself (``bench/outcomes_seed.py``), and times the supervisor dashboard with its
outcomes section over 90 and 30 days, and its outcomes query alone.

Usage: ``.venv/bin/python bench/console.py [--tickets 100000] [--pending 10000] [--requests 40]
[--outcome-tickets 1000000] [--outcome-days 90] [--dashboard-requests 10]``
(``make bench-console``). Results go to ``bench/results/console.json``. ``--smoke``: a few
hundred tickets and a few requests, to check that it runs to its end (its figures mean
nothing).

Everything is written to a database of the bench's own (``lab/throwaway.py``), dropped at
the end, also on failure, Ctrl-C or SIGTERM.
"""

import argparse
import json
import os
import platform
import random
import signal
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_DIR))
BATCH = 5000
SMOKE_OUT = Path(tempfile.gettempdir()) / "bench-console-smoke.json"


def percentiles(values: list[float]) -> dict:
    ordered = sorted(values)

    def at(p: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))], 2)

    return {"n": len(ordered), "p50_ms": at(50), "p95_ms": at(95), "max_ms": round(ordered[-1], 2)}


def seed(*, source: str, tickets: int, pending: int, done: int, rng: random.Random) -> None:
    from django.utils import timezone

    from agents.models import AgentDecision, PipelineRun
    from autonomy.models import ReviewItem
    from tickets.models import Category, Customer, Priority, Ticket

    now = timezone.now()
    customers = Customer.objects.bulk_create(
        [Customer(external_id=f"{source}-c{i}", name=f"Customer {i}", tier="STANDARD") for i in range(2000)]
    )
    states = ["on_time"] * 7 + ["at_risk"] * 2 + ["breached"]
    ids: list[int] = []
    for start in range(0, tickets, BATCH):
        rows = []
        for n in range(start, min(tickets, start + BATCH)):
            created = now - timedelta(minutes=rng.randrange(60 * 24 * 30))
            rows.append(
                Ticket(
                    source=source, external_id=str(n), customer=rng.choice(customers),
                    subject=f"Bench ticket {n}", body="Card declined at checkout, error ERR_PAYMENT_402.",
                    channel="email", category=rng.choice([*Category.values, ""]),
                    priority=rng.choice([*Priority.values, ""]), sla_state=rng.choice(states),
                    first_response_due=created + timedelta(hours=8),
                    resolution_due=created + timedelta(days=2), correlation_id="bench", created_at=created,
                )
            )  # fmt: skip
        ids += [t.pk for t in Ticket.objects.bulk_create(rows)]
        print(f"  tickets {len(ids)}/{tickets}", file=sys.stderr)
    chosen = rng.sample(ids, pending + done)
    types = ["category", "priority", "strategy", "escalation", "reply"]
    for start in range(0, len(chosen), BATCH):
        batch = chosen[start : start + BATCH]
        runs = PipelineRun.objects.bulk_create(
            [
                PipelineRun(ticket_id=t, number=1, status="done", correlation_id="bench", started_at=now)
                for t in batch
            ]
        )
        decisions = AgentDecision.objects.bulk_create(
            [
                AgentDecision(
                    ticket_id=run.ticket_id, run=run, agent="classifier", decision_type=rng.choice(types),
                    value={"category": "BILLING_INQUIRY"}, label="BILLING_INQUIRY",
                    raw_confidence=rng.random(), reasoning="bench", provider="local", latency_ms=1,
                    correlation_id="bench", created_at=now,
                )
                for run in runs
            ]
        )  # fmt: skip
        items = []
        for offset, decision in enumerate(decisions):
            is_done = start + offset >= pending
            items.append(
                ReviewItem(
                    decision=decision, ticket_id=decision.ticket_id, decision_type=decision.decision_type,
                    kind="decide", status="done" if is_done else "pending", show_suggestion=True,
                    uncertainty=round(1 - decision.raw_confidence, 4), outcome="confirmed" if is_done else "",
                    decided_at=now if is_done else None,
                    created_at=now - timedelta(minutes=rng.randrange(60 * 24 * 7)),
                )
            )  # fmt: skip
        ReviewItem.objects.bulk_create(items)
        print(f"  review items {start + len(batch)}/{len(chosen)}", file=sys.stderr)


def timed(client, path: str, *, requests: int, warmup: int = 3) -> dict:
    samples = []
    for n in range(warmup + requests):
        started = time.perf_counter()
        response = client.get(path)
        elapsed = (time.perf_counter() - started) * 1000
        if response.status_code != 200:
            raise SystemExit(f"{path}: {response.status_code}")
        if n >= warmup:
            samples.append(elapsed)
    return percentiles(samples)


def dashboard_bench(*, source: str, args) -> dict:
    """Outcome history of ``args.outcome_tickets`` tickets over ``args.outcome_days`` days, then
    the supervisor dashboard's server time over 90 and 30 days and its queries."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    from bench.outcomes_seed import seed_outcomes
    from outcomes.report import ticket_sums_by_day

    supervisor = get_user_model().objects.create_user(username=f"{source}-supervisor")
    supervisor.groups.add(Group.objects.get(name="supervisor"))
    now = timezone.now()
    started = time.perf_counter()
    written = seed_outcomes(
        source=f"{source}-outcomes", tickets=args.outcome_tickets, days=args.outcome_days,
        reviewer_id=supervisor.pk, now=now,
    )  # fmt: skip
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    seeded = time.perf_counter() - started
    client = Client(HTTP_HOST="localhost")
    client.force_login(supervisor)
    requests = args.dashboard_requests
    began = time.perf_counter()  # no day stored yet: every day before yesterday computed and stored
    assert client.get("/supervisor/dashboard/?days=90").status_code == 200
    first_request = (time.perf_counter() - began) * 1000
    server_time = {
        "dashboard_90d": timed(client, "/supervisor/dashboard/?days=90", requests=requests, warmup=1),
        "dashboard_30d": timed(client, "/supervisor/dashboard/?days=30", requests=requests, warmup=1),
    }
    with CaptureQueriesContext(connection) as captured:
        client.get("/supervisor/dashboard/?days=90")
    slowest = sorted(captured.captured_queries, key=lambda query: -float(query["time"]))[:5]
    refresh = refresh_bench(now=now)
    query_samples = []
    start = now - timedelta(days=90)
    for _ in range(max(3, requests // 2)):
        began = time.perf_counter()
        ticket_sums_by_day(start=start, end=now + timedelta(days=1))
        query_samples.append((time.perf_counter() - began) * 1000)
    return {
        "outcome_tickets": args.outcome_tickets,
        "outcome_days": args.outcome_days,
        "rows": written["rows"],
        "seed_seconds": round(seeded, 1),
        "queries_per_page": len(captured),
        "first_request_90d_ms": round(first_request, 1),
        "slowest_queries_ms": [
            {"ms": round(float(query["time"]) * 1000, 1), "sql": query["sql"][:120]} for query in slowest
        ],
        "refresh": refresh,
        "outcomes_query_90d": percentiles(query_samples),
        "server_time": server_time,
    }


def refresh_bench(*, now) -> dict:
    """The beat task that keeps the stored days: its first run (every day of the horizon),
    a run after a ticket of 60 days ago was resolved, and the next run (which sees the same change
    again: it looks back ``MARGIN`` before its last run)."""
    from django.utils import timezone

    from outcomes.day_figures import day_figures_refresh
    from tickets.models import Ticket

    def ms(run) -> tuple[float, str]:
        began = time.perf_counter()
        status = run()
        return round((time.perf_counter() - began) * 1000, 1), status

    out = {}
    out["first_ms"], out["first"] = ms(day_figures_refresh)
    old = Ticket.objects.filter(created_at__lt=now - timedelta(days=60), resolved_at__isnull=True).first()
    if old is not None:
        old.status, old.resolved_at, old.resolved_by = "resolved", timezone.now(), "person"
        old.save(update_fields=["status", "resolved_at", "resolved_by", "updated_at"])
    out["after_old_change_ms"], out["after_old_change"] = ms(day_figures_refresh)
    out["next_ms"], out["next"] = ms(day_figures_refresh)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tickets", type=int, default=100_000)
    parser.add_argument("--pending", type=int, default=10_000)
    parser.add_argument("--done", type=int, default=20_000)
    parser.add_argument("--requests", type=int, default=40)
    parser.add_argument("--outcome-tickets", type=int, default=1_000_000)
    parser.add_argument("--outcome-days", type=int, default=90)
    parser.add_argument("--dashboard-requests", type=int, default=10)
    parser.add_argument("--out", type=Path, default=REPO_DIR / "bench" / "results" / "console.json")
    parser.add_argument("--smoke", action="store_true", help="a tiny run that checks the bench works")
    args = parser.parse_args(argv)
    if args.smoke:  # small defaults; flags given still win
        parser.set_defaults(
            tickets=300,
            pending=60,
            done=60,
            requests=3,
            outcome_tickets=2000,
            dashboard_requests=3,
            out=SMOKE_OUT,
        )
        args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))  # leaves the database block

    os.environ["DJANGO_SETTINGS_MODULE"] = "csai.settings"
    import django
    from django.conf import settings

    # Templates link static files by name; no collectstatic manifest is needed to time views.
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    django.setup()
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.db import connection
    from django.test import Client

    from autonomy.models import ReviewItem
    from lab.throwaway import throwaway_database
    from review import selectors

    source = f"bench-console-{int(time.time())}"
    username = f"{source}-reviewer"
    rng = random.Random(7)
    with throwaway_database("bench_console_"):
        started = time.perf_counter()
        seed(source=source, tickets=args.tickets, pending=args.pending, done=args.done, rng=rng)
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE")  # a table in steady state, as autovacuum keeps it
        seeded = time.perf_counter() - started
        user = get_user_model().objects.create_user(username=username)
        user.groups.add(Group.objects.get(name="reviewer"))
        client = Client(HTTP_HOST="localhost")
        client.force_login(user)

        # Tickets with something waiting: a review page is one ticket's decisions in one pass.
        pending = list(
            ReviewItem.objects.filter(ticket__source=source, status="pending")
            .values_list("ticket_id", flat=True)
            .distinct()[:200]
        )
        results = {
            "queue_page_1": timed(client, "/review/", requests=args.requests),
            "queue_page_40": timed(client, "/review/?page=40", requests=args.requests),
            "queue_filtered": timed(
                client, "/review/?decision_type=priority&priority=HIGH", requests=args.requests
            ),
            "queue_counts": timed(client, "/review/counts/", requests=args.requests),
        }
        review_samples = []
        for ticket_id in rng.sample(pending, min(len(pending), args.requests + 3)):
            started_page = time.perf_counter()
            assert client.get(f"/review/tickets/{ticket_id}/").status_code == 200
            review_samples.append((time.perf_counter() - started_page) * 1000)
        results["review_page"] = percentiles(review_samples[3:])
        with connection.cursor() as cursor:
            # The queue's ordering query: the tickets of the first page (review.selectors.queue_page).
            page_ids = selectors.queue_order().values_list("ticket_id", flat=True)[: selectors.PAGE_SIZE + 1]
            sql, params = page_ids.query.sql_with_params()
            cursor.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}", params)  # noqa: S608
            plan = cursor.fetchone()[0][0]

        outcomes = dashboard_bench(source=source, args=args)

        out = {
            "bench": "console",
            "when": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": {
                "python": platform.python_version(),
                "cpus": os.cpu_count(),
                "platform": platform.platform(),
            },
            "data": {
                "tickets": args.tickets,
                "pending_items": args.pending,
                "done_items": args.done,
                "seed_seconds": round(seeded, 1),
            },  # fmt: skip
            "server_time": {**results, **outcomes.pop("server_time")},
            "queue_query_plan_ms": {"planning": plan["Planning Time"], "execution": plan["Execution Time"]},
            "dashboard": outcomes,
        }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

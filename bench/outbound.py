"""Outbound events benchmark: webhook deliveries per second to a local receiver, and the
outbox's lag (event written → 2xx received) while tickets arrive at a steady rate.

One endpoint subscribed to every event type, served by a local HTTP receiver (a thread of
this process, HTTP/1.1 keep-alive, checking every signature). One Celery worker consumes
the ``events`` queue only, as a deployment that gives webhooks a worker of their own would
(``--concurrency`` processes, default 2). Each ticket goes through the product's services
as it would in production and writes three events: ``ticket.created`` (intake),
``ticket.triaged`` and ``ticket.message.created`` (a reply). Two phases:

- **backlog**: ``--backlog`` tickets are written before the worker starts, so their events
  wait in the outbox; the worker then drains them. Deliveries per second = deliveries /
  (last 2xx − first attempt): the worker's capacity.
- **steady**: tickets arrive at ``--rate`` per second for ``--seconds``. Lag per event =
  the sender's time of the 2xx (``Delivery.delivered_at``) − the time the event was written
  in its transaction (``Event.created_at``): commit, the fan-out task, the send task and
  the HTTP round trip. Percentiles p50/p95/p99/max.

Runs in a database of its own (``bench/throwaway.py``) with Celery messages in Redis
database ``BENCH_REDIS_DB`` (flushed at the end). The intake tasks the tickets queue are
not consumed (the worker takes only ``events``) and are flushed with it.

Usage: ``.venv/bin/python bench/outbound.py [--rate 2] [--seconds 60] [--backlog 300]
[--concurrency 2] [--out PATH]`` (``make bench-outbound``). ``--smoke``: a few seconds, to
check that it runs to its end (its figures mean nothing).
"""

import argparse
import base64
import hashlib
import hmac
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

REPO_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_DIR))

BENCH_REDIS_DB = 11
SMOKE_OUT = Path(tempfile.gettempdir()) / "bench-outbound-smoke.json"
EVENTS_PER_TICKET = 3


def percentiles(values: list[float]) -> dict:
    ordered = sorted(values)
    if not ordered:
        return {"n": 0}

    def at(p: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))], 1)

    return {"n": len(ordered), "p50": at(50), "p95": at(95), "p99": at(99), "max": round(ordered[-1], 1)}


class Receiver:
    """Answers 200 to every POST, after checking its Standard Webhooks signature."""

    def __init__(self):
        self.secret_key = b""
        self.requests = 0
        self.bad_signatures = 0
        self.ids: Counter = Counter()
        self.order: dict[str, list[int]] = {}  # subject → sequences in the order received
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                webhook_id = self.headers.get("webhook-id", "")
                signed = f"{webhook_id}.{self.headers.get('webhook-timestamp', '')}.".encode() + body
                expected = base64.b64encode(hmac.new(receiver.secret_key, signed, hashlib.sha256).digest())
                good = any(
                    hmac.compare_digest(expected, sig.encode().removeprefix(b"v1,"))
                    for sig in self.headers.get("webhook-signature", "").split()
                )
                event = json.loads(body)
                with receiver.lock:
                    receiver.requests += 1
                    receiver.bad_signatures += not good
                    receiver.ids[webhook_id] += 1
                    subject = f"{event['subject']['kind']}#{event['subject']['id']}"
                    receiver.order.setdefault(subject, []).append(event["sequence"])
                self.send_response(200 if good else 401)
                self.send_header("content-length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/webhooks"

    def out_of_order(self) -> int:
        """Subjects whose events arrived in another order than their sequence numbers."""
        return sum(seen != sorted(seen) for seen in self.order.values())


def ticket_arrives(index: int, source: str) -> None:
    """One ticket's first minutes through the services: intake, triage, the reply."""
    from django.db import transaction

    from tickets.models import Message
    from tickets.services import CustomerData, TicketData, message_post, ticket_create, ticket_triage_set

    data = TicketData(
        source=source,
        external_id=f"OUT-{index}",
        subject="Card declined at checkout",
        body="My card keeps getting declined with ERR_PAYMENT_402.",
        channel="email",
        customer=CustomerData(external_id=f"C-{index % 50}", name="Bench Customer", tier="STANDARD"),
        metadata={},
    )
    ticket, _ = ticket_create(data=data)
    with transaction.atomic():
        ticket_triage_set(ticket=ticket, category="BILLING_INQUIRY", priority="HIGH")
    message_post(
        ticket=ticket,
        kind=Message.Kind.EXTERNAL,
        sender_kind=Message.SenderKind.AI_AGENT,
        sender_id="csai-agents",
        content="We are looking into the declined payment.",
    )


def start_worker(env: dict, concurrency: int, log: Path) -> subprocess.Popen:
    pool = ["--pool=solo"] if concurrency == 1 else [f"--concurrency={concurrency}"]
    command = [sys.executable, "-m", "celery", "-A", "csai", "worker", *pool, "-Q", "events", "-l", "INFO"]
    with log.open("w") as out:
        return subprocess.Popen(command, cwd=REPO_DIR, env=env, stdout=out, stderr=subprocess.STDOUT)  # noqa: S603


def wait_delivered(since_id: int, expected: int, worker: subprocess.Popen, log: Path, timeout: float) -> None:
    from events.models import Delivery

    deadline = time.monotonic() + timeout
    done = 0
    while done < expected:
        if worker.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"only {done}/{expected} delivered:\n{log.read_text()[-3000:]}")
        time.sleep(0.1)
        done = Delivery.objects.filter(event_id__gt=since_id, status=Delivery.Status.DELIVERED).count()


def phase_figures(since_id: int, until_id: int) -> dict:
    from django.db.models import Max, Min

    from events.models import Attempt, Delivery

    deliveries = Delivery.objects.filter(event_id__gt=since_id, event_id__lte=until_id)
    lags = [
        (delivered - written).total_seconds() * 1000
        for delivered, written in deliveries.values_list("delivered_at", "event__created_at")
    ]
    fan_outs = [
        (fanned - written).total_seconds() * 1000
        for fanned, written in deliveries.values_list("event__fanned_out_at", "event__created_at")
    ]
    attempts = Attempt.objects.filter(delivery__in=deliveries)
    sent = [
        (attempted - written).total_seconds() * 1000
        for attempted, written in attempts.filter(number=1).values_list(
            "attempted_at", "delivery__event__created_at"
        )
    ]
    span = attempts.aggregate(first=Min("attempted_at"), last=Max("delivery__delivered_at"))
    seconds = (span["last"] - span["first"]).total_seconds()
    return {
        "deliveries": len(lags),
        "attempts": attempts.count(),
        "seconds": round(seconds, 2),
        "delivered_per_second": round(len(lags) / seconds, 1) if seconds else None,
        "lag_ms": percentiles(lags),
        # Where the lag goes: written → fanned out (commit, queue, fan-out task) → first
        # attempt sent (the send task) → its 2xx (attempt_ms).
        "written_to_fanned_out_ms": percentiles(fan_outs),
        "written_to_first_attempt_ms": percentiles(sent),
        "attempt_ms": percentiles(list(attempts.values_list("duration_ms", flat=True))),
    }


def flush_broker(redis_url: str) -> None:
    import redis

    redis.Redis.from_url(redis_url).flushdb()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=2.0, help="tickets per second in the steady phase")
    parser.add_argument("--seconds", type=float, default=60.0, help="length of the steady phase")
    parser.add_argument("--backlog", type=int, default=300, help="tickets written before the worker starts")
    parser.add_argument("--concurrency", type=int, default=2, help="worker processes (1: solo pool)")
    parser.add_argument("--timeout", type=float, default=600, help="give up after this many seconds a phase")
    parser.add_argument("--out", type=Path, default=REPO_DIR / "bench/results/outbound.json")
    parser.add_argument("--smoke", action="store_true", help="a tiny run that checks the bench works")
    args = parser.parse_args(argv)
    if args.smoke:  # small defaults; flags given still win
        parser.set_defaults(rate=2.0, seconds=3.0, backlog=10, timeout=120, out=SMOKE_OUT)
        args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))

    os.environ["DJANGO_SETTINGS_MODULE"] = "csai.settings"
    os.environ["CSAI_WEBHOOK_ALLOW_PRIVATE"] = "true"  # the receiver is on loopback
    import django

    django.setup()
    from django.conf import settings

    from csai.celery import app
    from events import services
    from events.models import Event
    from lab.throwaway import throwaway_database

    redis_url = urlunsplit(urlsplit(settings.REDIS_URL)._replace(path=f"/{BENCH_REDIS_DB}"))
    app.conf.broker_url = redis_url  # this process queues the tasks, as the web would
    started_at = datetime.now(UTC)
    loadavg_before = [round(x, 2) for x in os.getloadavg()]
    source = f"bench-outbound-{started_at:%Y%m%d%H%M%S}"
    receiver = Receiver()
    worker = None
    with (
        throwaway_database("bench_outbound_") as database_url,
        tempfile.TemporaryDirectory(prefix="bench-") as tmp,
    ):
        env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "CELERY_BROKER_URL": redis_url,
            "SECRET_KEY": settings.SECRET_KEY,
            "CSAI_WEBHOOK_SECRET": settings.CSAI_WEBHOOK_SECRET,
            "LOG_LEVEL": "WARNING",
        }
        log = Path(tmp) / "worker.log"
        try:
            endpoint = services.endpoint_create(url=receiver.url, description="bench receiver")
            receiver.secret_key = base64.b64decode(endpoint.secret.removeprefix("whsec_"))

            print(f"backlog: writing {args.backlog} tickets before the worker starts ...", file=sys.stderr)
            for index in range(args.backlog):
                ticket_arrives(index, source)
            backlog_last = Event.objects.latest("id").pk
            worker = start_worker(env, args.concurrency, log)
            wait_delivered(0, args.backlog * EVENTS_PER_TICKET, worker, log, args.timeout)
            backlog = phase_figures(0, backlog_last)

            count = round(args.rate * args.seconds)
            print(f"steady: {count} tickets at {args.rate}/s ...", file=sys.stderr)
            begin = time.monotonic()
            late = 0
            for n in range(count):
                due = begin + n / args.rate
                pause = due - time.monotonic()
                if pause > 0:
                    time.sleep(pause)
                else:
                    late += 1
                ticket_arrives(args.backlog + n, source)
            written_seconds = time.monotonic() - begin
            wait_delivered(backlog_last, count * EVENTS_PER_TICKET, worker, log, args.timeout)
            steady = phase_figures(backlog_last, Event.objects.latest("id").pk)
            steady.update(
                tickets=count,
                tickets_per_second=round(count / written_seconds, 2),
                events_per_second=round(count * EVENTS_PER_TICKET / written_seconds, 1),
                tickets_written_late=late,
            )
        finally:
            if worker is not None:
                worker.terminate()
                worker.wait(timeout=60)
            flush_broker(redis_url)
            receiver.server.shutdown()
    results = {
        "benchmark": "outbound",
        "timestamp": started_at.isoformat(timespec="seconds"),
        "machine": {
            "nproc": len(os.sched_getaffinity(0)),
            "platform": platform.platform(),
            "loadavg_before": loadavg_before,
            "loadavg_after": [round(x, 2) for x in os.getloadavg()],
        },
        "worker": {
            "processes": args.concurrency,
            "pool": "solo" if args.concurrency == 1 else "prefork",
            "queues": "events",
        },
        "events_per_ticket": EVENTS_PER_TICKET,
        "backlog": backlog,
        "steady": steady,
        "receiver": {
            "requests": receiver.requests,
            "bad_signatures": receiver.bad_signatures,
            "duplicates": sum(n - 1 for n in receiver.ids.values()),
            "subjects_out_of_order": receiver.out_of_order(),
            "subjects": len(receiver.order),
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(
        f"backlog: {backlog['deliveries']} deliveries at {backlog['delivered_per_second']}/s; "
        f"steady: {steady['events_per_second']} events/s, lag p50 {steady['lag_ms']['p50']} ms, "
        f"p95 {steady['lag_ms']['p95']} ms"
    )
    print(f"results: {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

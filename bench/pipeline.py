"""Pipeline benchmark: tickets per second through intake and all four agents, one worker.

Queues ``--tickets`` demo tickets through the intake service (each one's intake task
waits in Redis), then starts one Celery worker (``--concurrency`` processes, default 1)
on the local model and measures how long it takes to drain them: intake, then classify,
select, escalate and update for every ticket, each a task of its own with its database
writes. Per-step figures come from the worker's own "succeeded in" log lines (task wall
time) and from each decision's recorded agent latency.

Runs in a database of its own (``bench/throwaway.py``), seeded exactly as ``make run``
seeds a fresh installation (``manage.py seed_agents``: knowledge base, ``--history`` labeled
demo tickets, a model per decision type), so every run starts from the same state: the
policy in phase 1, every decision shadowed and queued for review.

Usage: ``.venv/bin/python bench/pipeline.py [--tickets 1000] [--concurrency 1] [--out PATH]``
(``make bench-pipeline``). Results go to ``bench/results/pipeline.json``. ``--smoke``: a
few tickets on a small model, to check that it runs to its end (its figures mean nothing).

Side effects, undone at the end: the bench's database (dropped) and the Celery messages in
Redis database ``BENCH_REDIS_DB`` (flushed).
"""

import argparse
import io
import json
import os
import platform
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

REPO_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_DIR))

# The worker's broker and cache: a database of its own, so a running `make run` neither
# takes these tasks nor loses its own when the bench flushes this one at the end.
BENCH_REDIS_DB = 10
SMOKE_OUT = Path(tempfile.gettempdir()) / "bench-pipeline-smoke.json"
TASK_DONE = re.compile(r"Task (?P<task>[\w.]+)\[[^\]]+\] succeeded in (?P<seconds>[\d.e-]+)s")


def percentiles(values: list[float]) -> dict:
    ordered = sorted(values)
    if not ordered:
        return {"n": 0}

    def at(p: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))], 3)

    return {"n": len(ordered), "p50": at(50), "p95": at(95), "p99": at(99), "max": round(ordered[-1], 3)}


def queue_tickets(count: int, source: str) -> list[int]:
    from lab.demo import iter_tickets
    from tickets.serializers import WebhookTicketSerializer
    from tickets.services import ticket_create

    ids = []
    for index, payload in enumerate(iter_tickets(seed=4242, source=source)):
        if index == count:
            break
        serializer = WebhookTicketSerializer(data=payload)
        serializer.is_valid(raise_exception=True)
        ticket, _ = ticket_create(data=serializer.to_ticket_data())
        ids.append(ticket.pk)
        if (index + 1) % 100 == 0:
            print(f"\rqueued {index + 1}/{count} tickets", end="", file=sys.stderr)
    print(file=sys.stderr)
    return ids


def start_worker(env: dict, concurrency: int, log: Path) -> subprocess.Popen:
    from csai.celery import worker_queues

    pool = ["--pool=solo"] if concurrency == 1 else [f"--concurrency={concurrency}"]
    command = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "csai",
        "worker",
        *pool,
        "-Q",
        worker_queues(),
        "-l",
        "INFO",
    ]
    with log.open("w") as out:
        return subprocess.Popen(command, cwd=REPO_DIR, env=env, stdout=out, stderr=subprocess.STDOUT)  # noqa: S603


def wait_drained(ticket_ids: list[int], worker: subprocess.Popen, log: Path, timeout: float) -> float:
    """Seconds from the worker's first task to the last run finished."""
    from agents.models import PipelineRun

    deadline = time.monotonic() + timeout
    while "succeeded in" not in log.read_text(errors="replace"):
        if worker.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"worker did not start:\n{log.read_text()[-3000:]}")
        time.sleep(0.01)
    started = time.monotonic()
    done = shown = 0
    while done < len(ticket_ids):
        if worker.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"only {done}/{len(ticket_ids)} finished:\n{log.read_text()[-3000:]}")
        time.sleep(0.05)
        done = PipelineRun.objects.filter(ticket_id__in=ticket_ids, status=PipelineRun.Status.DONE).count()
        if done - shown >= 50 or done == len(ticket_ids):
            print(f"\rdecided {done}/{len(ticket_ids)} tickets", end="", file=sys.stderr)
            shown = done
    print(file=sys.stderr)
    return time.monotonic() - started


def step_times(log: Path) -> dict:
    seconds = defaultdict(list)
    for match in TASK_DONE.finditer(log.read_text(errors="replace")):
        seconds[match["task"].rsplit(".", 1)[-1]].append(float(match["seconds"]) * 1000)
    return {task: percentiles(values) for task, values in sorted(seconds.items())}


def agent_latencies(ticket_ids: list[int]) -> dict:
    from agents.models import AgentDecision

    latencies = defaultdict(list)
    rows = AgentDecision.objects.filter(ticket_id__in=ticket_ids).values_list("decision_type", "latency_ms")
    for decision_type, latency in rows:
        latencies[decision_type].append(latency)
    return {decision_type: percentiles(values) for decision_type, values in sorted(latencies.items())}


def flush_broker(redis_url: str) -> int:
    """Empty the bench's Redis database; returns how many keys it held."""
    import redis

    client = redis.Redis.from_url(redis_url)
    keys = client.dbsize()
    client.flushdb()
    return keys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tickets", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=1, help="worker processes (1: solo pool)")
    parser.add_argument("--history", type=int, default=1500, help="labeled demo tickets to train on")
    parser.add_argument("--timeout", type=float, default=900, help="give up after this many seconds")
    parser.add_argument("--out", type=Path, default=REPO_DIR / "bench/results/pipeline.json")
    parser.add_argument("--smoke", action="store_true", help="a tiny run that checks the bench works")
    args = parser.parse_args(argv)
    if args.smoke:  # small defaults; flags given still win
        parser.set_defaults(tickets=5, history=200, timeout=120, out=SMOKE_OUT)
        args = parser.parse_args(argv)
    # Leaves the database block and stops the worker. (Raising SIGINT instead did nothing when
    # started in the background, where SIGINT is ignored.)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))

    os.environ["DJANGO_SETTINGS_MODULE"] = "csai.settings"
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    from agents.models import ModelVersion
    from lab.throwaway import throwaway_database

    redis_url = urlunsplit(urlsplit(settings.REDIS_URL)._replace(path=f"/{BENCH_REDIS_DB}"))
    started_at = datetime.now(UTC)
    loadavg_before = [round(x, 2) for x in os.getloadavg()]  # other work on the machine skews it
    source = f"bench-pipeline-{started_at:%Y%m%d%H%M%S}"
    # This process sends the intake tasks to the bench's broker database, like the web would.
    from csai.celery import app

    app.conf.broker_url = redis_url
    worker = None
    with (
        throwaway_database("bench_pipeline_") as database_url,
        tempfile.TemporaryDirectory(prefix="bench-") as tmp,
    ):
        print(f"seeding agents on {args.history} demo tickets ...", file=sys.stderr)
        call_command("seed_agents", history=args.history, verbosity=0, stdout=io.StringIO())
        env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "CELERY_BROKER_URL": redis_url,
            "SECRET_KEY": settings.SECRET_KEY,
            "CSAI_WEBHOOK_SECRET": settings.CSAI_WEBHOOK_SECRET,
            "ANTHROPIC_API_KEY": "",  # the local model, always
            "LOG_LEVEL": "WARNING",  # keeps the app quiet; celery still logs each task at INFO
        }
        log = Path(tmp) / "worker.log"
        try:
            ticket_ids = queue_tickets(args.tickets, source)
            worker = start_worker(env, args.concurrency, log)
            seconds = wait_drained(ticket_ids, worker, log, args.timeout)
            steps = step_times(log)
            agents = agent_latencies(ticket_ids)
            models = {
                m.decision_type: f"v{m.version} {m.algorithm} ({m.training_size} examples)"
                for m in ModelVersion.objects.filter(is_active=True)
            }
        finally:
            if worker is not None:
                worker.terminate()
                worker.wait(timeout=60)
            flush_broker(redis_url)
    results = {
        "benchmark": "pipeline",
        "timestamp": started_at.isoformat(timespec="seconds"),
        "machine": {
            "nproc": len(os.sched_getaffinity(0)),
            "platform": platform.platform(),
            "loadavg_before": loadavg_before,
            "loadavg_after": [round(x, 2) for x in os.getloadavg()],
        },
        "worker": {"processes": args.concurrency, "pool": "solo" if args.concurrency == 1 else "prefork"},
        "provider": "local",
        "models": models,
        "history": args.history,
        "tickets": len(ticket_ids),
        "seconds": round(seconds, 2),
        "tickets_per_second": round(len(ticket_ids) / seconds, 1),
        "tasks_per_ticket": round(sum(s["n"] for s in steps.values()) / len(ticket_ids), 2),
        "task_ms": steps,
        "agent_ms": agents,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps({k: results[k] for k in ("tickets", "seconds", "tickets_per_second")}))
    for task, stats in steps.items():
        print(f"  {task:<16} p50 {stats['p50']:>7.2f} ms  p95 {stats['p95']:>7.2f} ms  (n={stats['n']})")
    print(f"results: {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

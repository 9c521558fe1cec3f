"""Webhook intake benchmark: the real product against the floor of this stack.

Starts two gunicorn servers on loopback with the same worker settings and middleware:

* ``webhook``: the product (``csai.wsgi:application``), POST /api/v1/webhooks/tickets;
* ``floor_insert``: the same WSGI entry point with ``bench.floor_settings``, whose only
  view does one INSERT (``bench/floor_urls.py``). Nothing Django-based can be faster.

Each request carries a new, uniquely numbered ticket, signed over the exact bytes sent.
After a warm-up, the two targets are driven in alternating rounds at a fixed concurrency,
then already-created tickets are delivered again (``webhook_duplicate``, expects 200).
Results go to ``bench/results/intake.json`` and a table to stdout; progress to stderr.

Usage: ``.venv/bin/python bench/intake.py [--seconds 20] [--concurrency 16] [--out PATH]``
(``make bench-intake``). ``--smoke``: about a second per target, to check that it runs to
its end (its figures mean nothing).

Side effects, all undone at the end: the servers write to a database of the bench's own
(``bench/throwaway.py``, dropped) and send Celery messages to Redis database
``BENCH_REDIS_DB`` (flushed).
"""

import argparse
import asyncio
import itertools
import json
import logging
import math
import os
import platform
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx

REPO_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_DIR))  # run as a script, only bench/ would be on the path

WORKERS = 2
THREADS = 4
# Bench servers use this Redis database for cache and Celery broker. Each created ticket
# enqueues ticket_intake on commit and no worker listens here, so the messages pile up;
# flushing this one database at the end removes exactly them. (Purging the shared
# "tickets" queue instead could also delete the messages of a running `make run`.)
# It also keeps the bench's throttle counters apart from a running server's.
BENCH_REDIS_DB = 9
# High enough that the throttle never refuses; it still runs (one Redis round trip).
WEBHOOK_RATE = "1000000/s"
CUSTOMERS = 1000  # tickets are spread over this many customers (upserted per request)
DUPLICATE_POOL = 5000  # bodies kept for the duplicate-delivery phase
SMOKE_OUT = Path(tempfile.gettempdir()) / "bench-intake-smoke.json"
FLOOR_TABLE = (
    "CREATE TABLE bench_floor (id bigserial PRIMARY KEY, body text, created_at timestamptz DEFAULT now())"
)
TICKET_TEXT = (
    "Hello, since this morning our team cannot export invoices from the billing page. "
    "The export button spins for a minute and then shows an error without any code. "
    "We tried Chrome and Firefox, cleared the cache and used two different accounts. "
    "Month-end closing is on Friday, so this is becoming urgent for our finance people. "
    "Could you look into it and tell us whether there is a workaround in the meantime?"
)


@dataclass
class Stats:
    latencies: list[float] = field(default_factory=list)  # seconds, expected status only
    statuses: Counter = field(default_factory=Counter)
    seconds: float = 0.0
    client_cpu_seconds: float = 0.0

    @property
    def requests(self) -> int:
        return sum(self.statuses.values())


@dataclass
class Target:
    name: str
    url: str
    expected: int
    make_body: Callable[[], bytes]
    stats: Stats = field(default_factory=Stats)


class TicketBodies:
    """Webhook bodies for one run: every call a new ticket (unique external id)."""

    def __init__(self, source: str):
        self.source = source
        self.numbers = itertools.count(1)
        self.sent: list[bytes] = []

    def new(self) -> bytes:
        number = next(self.numbers)
        customer = number % CUSTOMERS
        payload = {
            "source": self.source,
            "external_id": f"t-{number}",
            "subject": f"Invoice export fails (#{number})",
            "body": TICKET_TEXT,
            "channel": "email",
            "customer": {
                "external_id": f"{self.source}-c{customer}",
                "name": f"Customer {customer}",
                "email": f"customer{customer}@example.com",
                "company": "Example Ltd",
            },
            "metadata": {"bench": True},
        }
        body = json.dumps(payload).encode()
        if len(self.sent) < DUPLICATE_POOL:
            self.sent.append(body)
        return body

    def duplicates(self) -> Callable[[], bytes]:
        cycle = itertools.cycle(self.sent)
        return lambda: next(cycle)


# --- servers ----------------------------------------------------------------------------


@dataclass
class Server:
    name: str
    process: subprocess.Popen
    base_url: str
    log: Path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(name: str, settings_module: str, env: dict, log_dir: Path) -> Server:
    port = _free_port()
    log = log_dir / f"{name}.log"
    command = [
        sys.executable, "-m", "gunicorn", "csai.wsgi:application",
        "--chdir", str(REPO_DIR),
        "--bind", f"127.0.0.1:{port}",
        "--worker-class", "gthread",
        "--workers", str(WORKERS),
        "--threads", str(THREADS),
        "--graceful-timeout", "5",
        "--log-level", "warning",
    ]  # fmt: skip
    with log.open("wb") as out:
        process = subprocess.Popen(  # noqa: S603 - fixed command
            command,
            env={**env, "DJANGO_SETTINGS_MODULE": settings_module},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches only us; we stop it in order
        )
    return Server(name, process, f"http://127.0.0.1:{port}", log)


def wait_ready(server: Server, path: str, timeout: float = 60) -> None:
    """Any HTTP answer means a worker has loaded the application."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            tail = server.log.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"{server.name} server exited on start:\n{tail}")
        try:
            httpx.get(server.base_url + path, timeout=2)
            return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise RuntimeError(f"{server.name} server not ready after {timeout}s; see {server.log}")


def stop_server(server: Server) -> None:
    if server.process.poll() is None:
        server.process.terminate()  # gunicorn: graceful stop of master and workers
        try:
            server.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(server.process.pid, signal.SIGKILL)  # its own session: our children only
            server.process.wait()


# --- load -------------------------------------------------------------------------------


async def drive(
    client: httpx.AsyncClient,
    target: Target,
    *,
    secret: str,
    seconds: float,
    max_requests: int,
    concurrency: int,
    label: str,
    record: bool = True,
) -> None:
    """Keep ``concurrency`` requests in flight until ``seconds`` or ``max_requests``."""
    from tickets import webhooks

    stats = target.stats if record else Stats()
    expected = str(target.expected)
    deadline = time.perf_counter() + seconds
    started = 0

    async def worker() -> None:
        nonlocal started
        while started < max_requests and time.perf_counter() < deadline:
            started += 1
            body = target.make_body()
            headers = {
                "Content-Type": "application/json",
                webhooks.HEADER: webhooks.sign(secret=secret, body=body),
            }
            begin = time.perf_counter()
            try:
                response = await client.post(target.url, content=body, headers=headers)
                outcome = str(response.status_code)
            except httpx.HTTPError as error:
                outcome = type(error).__name__
            latency = time.perf_counter() - begin
            stats.statuses[outcome] += 1
            if outcome == expected:
                stats.latencies.append(latency)

    async def progress() -> None:
        before = stats.requests
        last = before
        while True:
            await asyncio.sleep(1)
            now = stats.requests
            errors = sum(n for status, n in stats.statuses.items() if status != expected)
            print(
                f"  {label:<28} {time.perf_counter() - begin_phase:5.1f}s"
                f" {now - before:7d} requests {now - last:6d}/s  errors so far {errors}",
                file=sys.stderr,
            )
            last = now

    begin_phase = time.perf_counter()
    cpu = time.process_time()
    reporter = asyncio.create_task(progress())
    try:
        await asyncio.gather(*(worker() for _ in range(concurrency)))
    finally:
        reporter.cancel()
    stats.seconds += time.perf_counter() - begin_phase
    stats.client_cpu_seconds += time.process_time() - cpu


async def run_load(
    targets: list[Target], duplicate: Target, *, secret: str, args: argparse.Namespace
) -> None:
    limits = httpx.Limits(max_connections=args.concurrency, max_keepalive_connections=args.concurrency)
    clients = {t.name: httpx.AsyncClient(limits=limits, timeout=30) for t in targets}
    clients[duplicate.name] = clients["webhook"]
    common = {"secret": secret, "concurrency": args.concurrency}
    try:
        for target in targets:
            await drive(
                clients[target.name],
                target,
                seconds=args.warmup,
                max_requests=args.max_requests,
                label=f"{target.name} warm-up",
                record=False,
                **common,
            )
        round_seconds = args.seconds / args.rounds
        for number in range(args.rounds):
            # Alternate the order each round so neither target always runs first.
            for target in targets if number % 2 == 0 else reversed(targets):
                await drive(
                    clients[target.name],
                    target,
                    seconds=round_seconds,
                    max_requests=args.max_requests - target.stats.requests,
                    label=f"{target.name} round {number + 1}/{args.rounds}",
                    **common,
                )
        if args.duplicates:
            await drive(
                clients[duplicate.name],
                duplicate,
                seconds=round_seconds,
                max_requests=args.max_requests,
                label=duplicate.name,
                **common,
            )
    finally:
        for client in {id(c): c for c in clients.values()}.values():
            await client.aclose()


# --- results ----------------------------------------------------------------------------


def _percentile(ordered: list[float], percent: float) -> float | None:
    """Nearest-rank percentile, in milliseconds."""
    if not ordered:
        return None
    index = max(0, math.ceil(percent / 100 * len(ordered)) - 1)
    return round(ordered[index] * 1000, 2)


def summarize(target: Target) -> dict:
    stats = target.stats
    ordered = sorted(stats.latencies)
    seconds = stats.seconds or float("nan")
    return {
        "path": urlsplit(target.url).path,
        "expected_status": target.expected,
        "requests": stats.requests,
        "ok": len(ordered),
        "errors": stats.requests - len(ordered),
        "seconds": round(stats.seconds, 2),
        "rps": round(len(ordered) / seconds, 1),
        "p50_ms": _percentile(ordered, 50),
        "p90_ms": _percentile(ordered, 90),
        "p99_ms": _percentile(ordered, 99),
        "max_ms": _percentile(ordered, 100),
        "mean_ms": round(sum(ordered) / len(ordered) * 1000, 2) if ordered else None,
        "status_counts": dict(sorted(stats.statuses.items())),
        "client_cpu_share": round(stats.client_cpu_seconds / seconds, 2),
    }


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 2) if a and b else None


def print_table(results: dict) -> None:
    columns = ("requests", "rps", "p50_ms", "p90_ms", "p99_ms", "max_ms", "errors")
    print(f"{'target':<18}" + "".join(f"{c:>10}" for c in columns))
    for name in ("webhook", "floor_insert", "webhook_duplicate"):
        if name in results:
            row = results[name]
            print(f"{name:<18}" + "".join(f"{row[c]!s:>10}" for c in columns))
    ratio = results["ratio"]
    print(
        f"webhook / floor: p50 x{ratio['p50_webhook_over_floor']}, "
        f"p99 x{ratio['p99_webhook_over_floor']}, "
        f"throughput x{ratio['rps_webhook_over_floor']}"
    )


# --- setup and cleanup ------------------------------------------------------------------


def _with_redis_db(url: str, db: int) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{db}"))


def _postgres_info() -> dict:
    from django.db import connection

    info = {}
    with connection.cursor() as cursor:
        for name in ("server_version", "fsync", "synchronous_commit", "max_connections"):
            cursor.execute(f"SHOW {name}")  # noqa: S608 - fixed names
            info[name] = cursor.fetchone()[0]
    return info


def written(source: str) -> dict:
    """What the run wrote, counted before its database is dropped."""
    from django.db import connection

    from tickets.models import Ticket

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM bench_floor")
        floor_rows = cursor.fetchone()[0]
    return {"tickets": Ticket.objects.filter(source=source).count(), "floor_rows": floor_rows}


def flush_broker(redis_url: str) -> int:
    """Empty the bench's Redis database; returns the ``ticket_intake`` messages it held."""
    import redis

    client = redis.Redis.from_url(redis_url)
    queued = client.llen("tickets")
    client.flushdb()
    return queued


def _interrupt(signum, frame):
    signal.raise_signal(signal.SIGINT)  # SIGTERM: stop like Ctrl-C, running the finally blocks


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20, help="measured time per target")
    parser.add_argument("--concurrency", type=int, default=16, help="requests in flight")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds per target")
    parser.add_argument(
        "--max-requests", type=int, default=200_000, help="cap on measured requests per target"
    )
    parser.add_argument(
        "--no-duplicates", dest="duplicates", action="store_false", help="skip duplicate phase"
    )
    parser.add_argument("--warmup", type=float, default=2, help="unmeasured seconds per target first")
    parser.add_argument("--out", type=Path, default=REPO_DIR / "bench" / "results" / "intake.json")
    parser.add_argument("--smoke", action="store_true", help="a tiny run that checks the bench works")
    args = parser.parse_args(argv)
    if args.smoke:  # small defaults; flags given still win
        parser.set_defaults(seconds=1, rounds=1, concurrency=2, warmup=0.5, max_requests=50, out=SMOKE_OUT)
        args = parser.parse_args(argv)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # Ctrl-C raises KeyboardInterrupt even when started in the background (SIGINT ignored);
    # asyncio.run then turns it into a clean cancellation of the load.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _interrupt)

    embedded_services = not (os.environ.get("DATABASE_URL") and os.environ.get("REDIS_URL"))
    secret_key = secrets.token_urlsafe(32)
    webhook_secret = secrets.token_urlsafe(32)
    os.environ["DJANGO_SETTINGS_MODULE"] = "csai.settings"
    os.environ["SECRET_KEY"] = secret_key
    os.environ["CSAI_WEBHOOK_SECRET"] = webhook_secret

    import django

    django.setup()  # acquires the embedded Postgres/Redis; released at exit
    import gunicorn
    from django.conf import settings
    from django.db import connection

    from lab.throwaway import throwaway_database

    # The settings log INFO to stderr; a line per request would cost the client CPU.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    bench_redis_url = _with_redis_db(settings.REDIS_URL, BENCH_REDIS_DB)
    env = {
        **os.environ,
        "REDIS_URL": bench_redis_url,
        "CELERY_BROKER_URL": bench_redis_url,
        "SECRET_KEY": secret_key,
        "CSAI_WEBHOOK_SECRET": webhook_secret,
        "CSAI_WEBHOOK_RATE": WEBHOOK_RATE,
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "DEBUG": "0",
        "CSAI_SECURE_COOKIES": "0",
    }
    started_at = datetime.now(UTC)
    source = f"bench-{started_at:%Y%m%d%H%M%S}"
    bodies = TicketBodies(source)
    floor_bodies = TicketBodies(source)  # same shape; kept apart so duplicates are real tickets
    machine = {
        "nproc": len(os.sched_getaffinity(0)),
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "loadavg_before": [round(x, 2) for x in os.getloadavg()],
    }

    servers: list[Server] = []
    print("creating the bench database ...", file=sys.stderr)
    with (
        throwaway_database("bench_intake_") as database_url,
        tempfile.TemporaryDirectory(prefix="bench-") as log_dir,
    ):
        env["DATABASE_URL"] = database_url
        with connection.cursor() as cursor:
            cursor.execute(FLOOR_TABLE)
        try:
            product = start_server("webhook", "csai.settings", env, Path(log_dir))
            servers.append(product)
            floor = start_server("floor_insert", "bench.floor_settings", env, Path(log_dir))
            servers.append(floor)
            wait_ready(product, "/health/")
            wait_ready(floor, "/floor")
            print(f"servers up: {product.base_url} (product), {floor.base_url} (floor)", file=sys.stderr)

            webhook = Target("webhook", product.base_url + "/api/v1/webhooks/tickets", 201, bodies.new)
            floor_insert = Target("floor_insert", floor.base_url + "/floor", 201, floor_bodies.new)
            duplicate = Target("webhook_duplicate", webhook.url, 200, bodies.duplicates())
            asyncio.run(run_load([webhook, floor_insert], duplicate, secret=webhook_secret, args=args))
        finally:
            for server in servers:
                stop_server(server)
            queued = flush_broker(bench_redis_url)
        wrote = {**written(source), "celery_messages": queued}
        postgres = _postgres_info()
        if any(t.stats.requests != len(t.stats.latencies) for t in (webhook, floor_insert, duplicate)):
            for server in servers:  # unexpected answers: show what the servers said
                tail = server.log.read_text(errors="replace")[-3000:]
                print(f"--- {server.name} server log (tail) ---\n{tail}", file=sys.stderr)

    results = {
        "benchmark": "intake",
        "timestamp": started_at.isoformat(timespec="seconds"),
        "machine": {**machine, "loadavg_after": [round(x, 2) for x in os.getloadavg()]},
        "versions": {
            "django": django.get_version(),
            "gunicorn": gunicorn.__version__,
            "httpx": httpx.__version__,
            "postgres": postgres,
        },
        "services": "embedded (csai.embedded)" if embedded_services else "DATABASE_URL/REDIS_URL",
        "gunicorn": {
            "worker_class": "gthread",
            "workers": WORKERS,
            "threads": THREADS,
            "bind": "127.0.0.1 (loopback)",
            "same_for_both": True,
        },
        "load": {
            "client": "httpx.AsyncClient, keep-alive, in the bench process on the same machine",
            "concurrency": args.concurrency,
            "seconds_per_target": args.seconds,
            "rounds": args.rounds,
            "warmup_seconds_per_target": args.warmup,
            "max_requests_per_target": args.max_requests,
            "body_bytes": len(bodies.sent[0]) if bodies.sent else None,
            "customers": CUSTOMERS,
            "webhook_rate_setting": WEBHOOK_RATE,
            "latency": "per request, client side; percentiles over expected-status responses",
        },
        "source": source,
        "written": wrote,  # all dropped or flushed at the end
        "webhook": summarize(webhook),
        "floor_insert": summarize(floor_insert),
    }
    if args.duplicates:
        results["webhook_duplicate"] = summarize(duplicate)
    results["ratio"] = {
        "p50_webhook_over_floor": _ratio(results["webhook"]["p50_ms"], results["floor_insert"]["p50_ms"]),
        "p99_webhook_over_floor": _ratio(results["webhook"]["p99_ms"], results["floor_insert"]["p99_ms"]),
        "rps_webhook_over_floor": _ratio(results["webhook"]["rps"], results["floor_insert"]["rps"]),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print_table(results)
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("interrupted; servers stopped and bench database dropped", file=sys.stderr)
        sys.exit(130)

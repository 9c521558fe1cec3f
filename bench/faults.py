"""Fault bench: the whole product under steady traffic while its parts are killed.

Starts the product as ``make run`` does (``python -m csai.launcher``) in a var folder of its
own (``CSAI_VAR_DIR``: its own embedded PostgreSQL and Redis), with demo traffic off and
Claude replaced by a local fake (``lab/fake_anthropic.py``). A sender posts signed tickets
at ``--rate`` per second for ``--minutes`` and retries as an integrator would: connection
errors, 5xx and 429 again with backoff (``Retry-After`` honoured), always with the same
``external_id``, so a retried ticket is found rather than doubled. Meanwhile, on a
schedule, it SIGKILLs the Celery worker, the PostgreSQL postmaster and redis-server (each
twice), a gunicorn web worker while requests are in flight, and makes the fake API storm
(429, 500, answers that never come, garbage) for a minute.

Per fault it measures the seconds until the product answers again (``/health/ready`` 200
and webhook 2xx, after the last failure seen) and until the pipeline records a decision
again, and the restarts the launcher counted (``/metrics``). Then it stops sending, waits
for the sweeps to finish what the faults left (until nothing is left, or nothing changes
for longer than the sweeps' grace), and reconciles with the database: tickets accepted,
stored (each exactly once), fully decided (every decision type of the pipeline decided,
each decision with its one disposition), decisions without a disposition, decisions
applied twice, runs stranded, dead letters by error type.

Usage: ``.venv/bin/python bench/faults.py [--minutes 10] [--rate 2] [--out PATH]``
(``make faults``). Every decision type is put in phase 4 on an identity calibration
(``policies_autonomous``), so decisions are applied on their own as well as queued for people.
Results go to ``bench/results/faults.json``. ``--smoke``: one fault of
each kind in about a minute of traffic, the sweeps' grace shortened to seconds
(``CSAI_SWEEP_GRACE``); ``tests/bench/test_bench_smoke.py`` runs it in ``make test``.

Side effects: none outside its temporary folder, whose servers are stopped and which is
deleted at the end (also on Ctrl-C or SIGTERM).
"""

import argparse
import contextlib
import json
import os
import platform
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

import httpx

REPO_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_DIR))  # run as a script, only bench/ would be on the path

from lab.fake_anthropic import FakeAnthropic  # noqa: E402
from tickets import webhooks  # noqa: E402

SMOKE_OUT = Path(tempfile.gettempdir()) / "bench-faults-smoke.json"
WEBHOOK = "/api/v1/webhooks/tickets"
READY = "/health/ready/"
METRICS_TOKEN = secrets.token_urlsafe(24)
FULL_FAULTS = ["worker", "postgres", "redis", "web", "llm_storm", "worker", "postgres", "redis"]
SMOKE_FAULTS = ["worker", "postgres", "redis", "web", "llm_storm"]
# A fault counts as recovered when the product answered again within this, and the pipeline
# recorded a decision again within RECOVER_TIMEOUT + this.
RECOVER_TIMEOUT = 120.0
STABLE_ANSWERING = 5.0  # seconds without a failure: the outage is over
PROGRESS_AFTER = 2.0  # a decision this long after a fault: not the tail of work already in hand
# The smoke run's sweeps take work as lost after seconds, not minutes, so it fits in ~3 minutes.
SMOKE_SWEEP_GRACE = {"intake": 10, "triage": 10, "run": 20, "disposition": 10}


def log(message: str) -> None:
    print(f"[faults {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- processes ---------------------------------------------------------------------------


def proc_table() -> dict[int, tuple[int, list[str]]]:
    """pid -> (parent pid, command line) of every process, from /proc."""
    table = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, ValueError, IndexError):
            stat = (entry / "stat").read_text()
            parent = int(stat.rsplit(")", 1)[1].split()[1])
            command = (entry / "cmdline").read_bytes().split(b"\0")
            table[int(entry.name)] = (parent, [part.decode(errors="replace") for part in command if part])
    return table


def children(pid: int, table: dict | None = None) -> dict[int, list[str]]:
    table = proc_table() if table is None else table
    return {child: command for child, (parent, command) in table.items() if parent == pid}


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Product:
    """``python -m csai.launcher`` in a var folder of its own, on a free port."""

    def __init__(self, *, root: Path, llm_url: str, sweep_grace: dict | None):
        self.root = root
        self.var_dir = root / "var"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = root / "launcher.log"
        drop = {"PYTEST_VERSION", "DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "DJANGO_SETTINGS_MODULE"}
        self.env = {k: v for k, v in os.environ.items() if k not in drop}
        self.env.update(
            CSAI_VAR_DIR=str(self.var_dir),
            PORT=str(self.port),
            CSAI_DEMO_RATE="0",
            CSAI_DEMO_HISTORY="0",
            CSAI_DEMO_PASSWORD=secrets.token_urlsafe(12),
            CSAI_METRICS_TOKEN=METRICS_TOKEN,
            ANTHROPIC_API_KEY="fake-key-for-the-fault-bench",
            ANTHROPIC_BASE_URL=llm_url,
            # A storm costs each call at most ~10 s: 3 s per try, one retry.
            CSAI_LLM_TIMEOUT_SECONDS="3",
            CSAI_LLM_MAX_RETRIES="1",
            LOG_LEVEL="WARNING",
        )
        if sweep_grace:
            self.env["CSAI_SWEEP_GRACE"] = json.dumps(sweep_grace)
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 300) -> float:
        """Start the launcher; returns the seconds until it answered ready."""
        started = time.monotonic()
        with self.log_path.open("w") as out:
            self.process = subprocess.Popen(  # noqa: S603 - our own launcher
                [sys.executable, "-m", "csai.launcher"],
                cwd=REPO_DIR,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        while time.monotonic() - started < timeout:
            if self.process.poll() is not None:
                raise SystemExit(f"the launcher exited:\n{self.log_tail()}")
            if "CSAI is running" in self.log_path.read_text(errors="replace"):
                return time.monotonic() - started
            time.sleep(0.5)
        raise SystemExit(f"the product was not ready after {timeout:.0f}s:\n{self.log_tail()}")

    def log_tail(self, chars: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:] if self.log_path.exists() else ""

    def stop(self) -> None:
        """SIGTERM to the launcher (it stops everything), then make sure the servers are down."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=90)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        if self.var_dir.exists():
            subprocess.run(  # noqa: S603
                [sys.executable, "-m", "csai.embedded", "stop"],
                cwd=REPO_DIR,
                env=self.env,
                capture_output=True,
                check=False,
            )

    # Where the parts are: the launcher's process tree, and the servers' pid files.

    def child(self, word: str) -> int | None:
        """The launcher's direct child whose command line holds ``word`` (web, worker, beat)."""
        for pid, command in children(self.process.pid).items():
            if word in command or any(part.endswith(f"/{word}") for part in command):
                return pid
        return None

    def web_workers(self) -> list[int]:
        master = self.child("gunicorn")
        return sorted(children(master)) if master else []

    def postgres_pid(self) -> int | None:
        with contextlib.suppress(OSError, ValueError, IndexError):
            return int((self.var_dir / "postgres" / "postmaster.pid").read_text().split()[0])
        return None

    def redis_pid(self) -> int | None:
        with contextlib.suppress(OSError, ValueError):
            return int((self.var_dir / "redis" / "redis.pid").read_text().strip())
        return None

    def database_url(self) -> str:
        socket_dir = (self.var_dir / "postgres" / "postmaster.pid").read_text().splitlines()[4]
        return f"postgresql://postgres@{quote(socket_dir, safe='')}/csai"

    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{(self.var_dir / 'redis' / 'port').read_text().strip()}/0"

    def secrets(self) -> dict:
        return json.loads((self.var_dir / "secrets.json").read_text())

    def restarts(self) -> dict[str, int] | None:
        """``csai_launcher_restarts_total`` by process; None when /metrics does not answer."""
        try:
            response = httpx.get(
                f"{self.url}/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}, timeout=10
            )
        except httpx.HTTPError:
            return None
        if response.status_code != 200:
            return None
        counts = {}
        for line in response.text.splitlines():
            if line.startswith("csai_launcher_restarts_total{"):
                labels, _, value = line.rpartition(" ")
                counts[labels.split('process="')[1].split('"')[0]] = int(float(value))
        return counts


# --- the sender --------------------------------------------------------------------------


@dataclass
class Delivery:
    external_id: str
    attempts: int = 0
    status: int | None = None  # the final answer: 201 created, 200 found (a retry), other: refused
    accepted_at: float | None = None


@dataclass
class Sender:
    """Posts signed tickets at a steady rate, each retried until accepted (or ``give_up``)."""

    url: str
    secret: str
    source: str
    rate: float
    give_up: float = 600.0
    deliveries: dict[str, Delivery] = field(default_factory=dict)
    answers: Counter = field(default_factory=Counter)  # every answer, by status or error
    # (time, ok) of every answer: when the product stopped and started answering.
    events: list[tuple[float, bool]] = field(default_factory=list)

    def __post_init__(self):
        from lab.demo import iter_tickets  # after django_on(): it reads the models' choices

        self._payloads = iter_tickets(seed=15, source=self.source)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._pool = ThreadPoolExecutor(max_workers=64, thread_name_prefix="sender")
        self._client = httpx.Client(timeout=10, limits=httpx.Limits(max_connections=64))
        self._futures = []
        self._rng = random.Random(15)

    def run(self, seconds: float) -> None:
        """Send at ``rate`` for ``seconds`` (call in a thread of its own)."""
        started = time.monotonic()
        sent = 0
        while not self._stop.is_set() and time.monotonic() - started < seconds:
            due = started + sent / self.rate
            if time.monotonic() < due:
                self._stop.wait(due - time.monotonic())
                continue
            self.submit()
            sent += 1

    def submit(self, count: int = 1) -> list:
        futures = []
        for _ in range(count):
            with self._lock:
                payload = next(self._payloads)
                delivery = self.deliveries[payload["external_id"]] = Delivery(payload["external_id"])
            futures.append(self._pool.submit(self._deliver, payload, delivery))
        self._futures += futures
        return futures

    def _deliver(self, payload: dict, delivery: Delivery) -> None:
        body = json.dumps(payload).encode()
        deadline = time.monotonic() + self.give_up
        while time.monotonic() < deadline:
            delivery.attempts += 1
            headers = {
                "Content-Type": "application/json",
                webhooks.HEADER: webhooks.sign(secret=self.secret, body=body),  # signed afresh each try
            }
            wait = None
            try:
                response = self._client.post(self.url + WEBHOOK, content=body, headers=headers)
            except httpx.TransportError as error:
                self._answer(type(error).__name__, ok=False)
            else:
                status = response.status_code
                self._answer(str(status), ok=status < 500)
                if status < 300:
                    delivery.status, delivery.accepted_at = status, time.time()
                    return
                if status != 429 and status < 500:  # refused for good: a bug to report, not retry
                    delivery.status = status
                    return
                with contextlib.suppress(TypeError, ValueError):
                    wait = float(response.headers.get("Retry-After"))
            backoff = min(30.0, 0.5 * 2 ** min(delivery.attempts - 1, 6))
            time.sleep((wait if wait is not None else backoff) * self._rng.uniform(0.8, 1.2))
        delivery.status = delivery.status or 0  # gave up

    def _answer(self, what: str, *, ok: bool) -> None:
        with self._lock:
            self.answers[what] += 1
            self.events.append((time.time(), ok))

    def stop(self, wait: float) -> None:
        """Stop sending; give the deliveries in hand ``wait`` seconds to be accepted."""
        self._stop.set()
        deadline = time.monotonic() + wait
        for future in list(self._futures):
            with contextlib.suppress(Exception):
                future.result(timeout=max(0.1, deadline - time.monotonic()))
        self._pool.shutdown(wait=False, cancel_futures=True)

    def accepted(self) -> set[str]:
        return {d.external_id for d in self.deliveries.values() if d.status is not None and d.status < 300}


class Prober:
    """Asks ``/health/ready`` twice a second; keeps (time, answered 200) of each."""

    def __init__(self, url: str):
        self.url = url + READY
        self.events: list[tuple[float, bool]] = []
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(timeout=2) as client:
            while not self._stop.is_set():
                try:
                    ok = client.get(self.url).status_code == 200
                except httpx.HTTPError:
                    ok = False
                self.events.append((time.time(), ok))
                self._stop.wait(0.5)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self._stop.set()
        self.thread.join(timeout=5)


# --- the database ------------------------------------------------------------------------


def django_on(product: Product) -> None:
    """Set up Django in this process on the product's own database and Redis."""
    stored = product.secrets()
    os.environ.update(
        DJANGO_SETTINGS_MODULE="csai.settings",
        CSAI_VAR_DIR=str(product.var_dir),
        DATABASE_URL=product.database_url(),
        REDIS_URL=product.redis_url(),
        SECRET_KEY=stored["SECRET_KEY"],
        CSAI_WEBHOOK_SECRET=stored["CSAI_WEBHOOK_SECRET"],
        DB_CONN_MAX_AGE="0",
        LOG_LEVEL="WARNING",  # the bench's own progress lines, not a line per HTTP request
    )
    import django

    django.setup()


AUTONOMY_THRESHOLD = 0.5


def policies_autonomous() -> dict[str, int]:
    """Every decision type in phase 4 (confident decisions applied, a sample reviewed after),
    on an identity calibration with threshold ``AUTONOMY_THRESHOLD``: part of the decisions are
    applied on their own, so the faults meet the apply path too, and part go to people."""
    from django.utils import timezone

    from agents import decision_types
    from autonomy.calibration import Calibration
    from autonomy.models import CalibrationVersion, Phase
    from autonomy.services.controller import policy_for

    phases = {}
    for name in decision_types.names():
        calibration = CalibrationVersion.objects.create(
            decision_type=name,
            version=CalibrationVersion.objects.filter(decision_type=name).count() + 1,
            params=Calibration(method="identity", n=0).to_dict(),
            ece=0.0,
            brier=0.0,
            samples=0,
            fitted_at=timezone.now(),
        )
        policy = policy_for(name)
        policy.phase, policy.calibration, policy.threshold = Phase.MONITORED, calibration, AUTONOMY_THRESHOLD
        policy.save(update_fields=["phase", "calibration", "threshold", "updated_at"])
        phases[name] = policy.phase
    return phases


def db_read(read, default=None):
    """``read()``, or ``default`` while the database is away."""
    from django.db import DatabaseError, connection

    try:
        return read()
    except DatabaseError:
        connection.close()
        return default


def first_decision_after(moment: float) -> float | None:
    """Unix time of the first decision recorded after ``moment``, if any yet."""
    from agents.models import AgentDecision

    since = datetime.fromtimestamp(moment, UTC)
    first = AgentDecision.objects.filter(created_at__gt=since).order_by("created_at").first()
    return first.created_at.timestamp() if first else None


def first_llm_decision_after(moment: float) -> float | None:
    from agents.models import AgentDecision, Provider

    since = datetime.fromtimestamp(moment, UTC)
    first = (
        AgentDecision.objects.filter(created_at__gt=since, provider=Provider.ANTHROPIC)
        .order_by("created_at")
        .first()
    )
    return first.created_at.timestamp() if first else None


def llm_fallbacks_between(start: float, end: float) -> int:
    from agents.models import AgentDecision

    return AgentDecision.objects.filter(
        created_at__gte=datetime.fromtimestamp(start, UTC),
        created_at__lte=datetime.fromtimestamp(end, UTC),
        evidence__has_key="llm_error",
    ).count()


def expected_types() -> list[str]:
    """The decision types a finished run holds: those of the steps up to the last one."""
    from django.conf import settings

    from agents import decision_types

    steps = list(decision_types.Step)
    last = steps.index(decision_types.Step(settings.CSAI_PIPELINE_LAST_STEP))
    return [kind.name for kind in decision_types.kinds() if steps.index(kind.step) <= last]


def reconcile(source: str, accepted: set[str]) -> dict:
    """What the database holds of the tickets sent, against what the sender was told."""
    from django.db.models import Count, Q

    from agents.models import AgentDecision, DeadLetter, PipelineRun
    from autonomy.models import Disposition, ReviewItem
    from tickets.models import Message, Ticket

    tickets = Ticket.objects.filter(source=source)
    stored = Counter(tickets.values_list("external_id", flat=True))
    types = expected_types()
    decisions = AgentDecision.objects.filter(ticket__source=source)
    with_disposition = decisions.filter(disposition__isnull=False)
    decided = (
        with_disposition.filter(decision_type__in=types)
        .values("ticket_id")
        .annotate(n=Count("decision_type", distinct=True))
        .filter(n=len(types))
    )
    runs = PipelineRun.objects.filter(ticket__source=source)
    letters = DeadLetter.objects.all()  # the product's own database: every letter is the bench's
    by_error = {}
    for row in letters.values("error_type").annotate(
        n=Count("id"), retried=Count("id", filter=Q(retried_at__isnull=False))
    ):
        by_error[row["error_type"]] = {"letters": row["n"], "retried": row["retried"]}
    decided_twice = (
        with_disposition.values("ticket_id", "decision_type").annotate(n=Count("id")).filter(n__gt=1).count()
    )
    applied_twice = (
        Disposition.objects.filter(decision__ticket__source=source, applied=True)
        .values("decision__ticket_id", "decision__decision_type")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
        .count()
    )
    # A reply or an escalation applied twice shows as the same message twice on its ticket.
    messages_twice = (
        Message.objects.filter(ticket__source=source)
        .values("ticket_id", "kind", "sender_kind", "content")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
        .count()
    )
    items_twice = (
        ReviewItem.objects.filter(ticket__source=source)
        .values("ticket_id", "decision_type")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
        .count()
    )
    not_done = tickets.exclude(pk__in=decided.values("ticket_id"))
    return {
        "tickets_accepted": len(accepted),
        "tickets_stored": len(stored),
        "accepted_not_stored": len(accepted - set(stored)),
        "stored_more_than_once": sum(1 for n in stored.values() if n > 1),
        "stored_not_acknowledged": len(set(stored) - accepted),
        "decision_types": types,
        "tickets_fully_decided": decided.count(),
        "decisions": decisions.count(),
        "decisions_with_one_disposition": with_disposition.count(),
        "decisions_without_disposition": decisions.filter(disposition__isnull=True).count(),
        "dispositions_by_kind": dict(
            Disposition.objects.filter(decision__ticket__source=source)
            .values_list("kind")
            .annotate(n=Count("id"))
            .order_by()
        ),
        "decided_twice": decided_twice,
        "applied_twice": applied_twice + messages_twice,
        "messages_twice": messages_twice,
        "review_items_twice": items_twice,
        "runs": dict(runs.values_list("status").annotate(n=Count("id")).order_by()),
        "runs_stranded": runs.filter(
            status__in=[PipelineRun.Status.RUNNING, PipelineRun.Status.DEAD]
        ).count(),
        "tickets_without_run": tickets.filter(pipeline_runs__isnull=True).count(),
        "dead_letters": by_error,
        "not_fully_decided_examples": [
            {"ticket": t.pk, "stage": t.stage, "runs": list(t.pipeline_runs.values_list("status", flat=True))}
            for t in not_done.order_by("pk")[:10]
        ],
    }


def outstanding(source: str, accepted: set[str]) -> dict:
    """What is left to do, polled while the system settles."""
    figures = reconcile(source, accepted)
    return {
        "not_fully_decided": figures["tickets_stored"] - figures["tickets_fully_decided"],
        "without_disposition": figures["decisions_without_disposition"],
        "runs_not_done": figures["runs_stranded"],
        "decisions": figures["decisions"],
    }


# --- faults ------------------------------------------------------------------------------


def answering_again(fault_at: float, events: list[tuple[float, bool]]) -> float | None:
    """Seconds from the fault to the first success after the last failure (0: none failed)."""
    after = sorted(e for e in events if e[0] >= fault_at)
    failures = [t for t, ok in after if not ok]
    if not failures:
        return 0.0
    back = next((t for t, ok in after if ok and t > failures[-1]), None)
    return None if back is None else round(back - fault_at, 2)


@dataclass
class FaultRun:
    product: Product
    sender: Sender
    prober: Prober
    fake: FakeAnthropic
    storm_seconds: float
    results: list[dict] = field(default_factory=list)

    def inject(self, kind: str) -> dict:
        """Cause one fault; returns what was done."""
        product = self.product
        if kind == "worker":
            pid = product.child("worker")
            os.kill(pid, signal.SIGKILL)
            return {"killed_pid": pid}
        if kind == "postgres":
            pid = product.postgres_pid()
            os.kill(pid, signal.SIGKILL)
            return {"killed_pid": pid}
        if kind == "redis":
            pid = product.redis_pid()
            os.kill(pid, signal.SIGKILL)
            return {"killed_pid": pid}
        if kind == "web":
            # A burst of deliveries, and one of the two gunicorn workers killed under them.
            pid = product.web_workers()[0]
            in_flight = self.sender.submit(16)
            time.sleep(0.03)
            os.kill(pid, signal.SIGKILL)
            for future in in_flight:
                with contextlib.suppress(Exception):
                    future.result(timeout=RECOVER_TIMEOUT)
            return {"killed_pid": pid, "burst": 16}
        if kind == "llm_storm":
            self.fake.storm(self.storm_seconds)
            return {"storm_seconds": self.storm_seconds}
        raise ValueError(kind)

    def measure(self, kind: str) -> dict:
        restarts_before = self.product.restarts()
        fault_at = time.time()
        what = self.inject(kind)
        log(f"fault: {kind} {what}")
        # Answering again: /health/ready and the webhook, after the last failure either saw.
        deadline = fault_at + RECOVER_TIMEOUT
        answered = None
        while time.time() < deadline:
            time.sleep(1)
            events = self.prober.events + self.sender.events
            last_failure = max((t for t, ok in events if t >= fault_at and not ok), default=fault_at)
            if time.time() - last_failure >= STABLE_ANSWERING:
                answered = answering_again(fault_at, events)
                break
        # Progress: the first decision recorded after the fault (and after the product is back).
        progress_from = max(fault_at + PROGRESS_AFTER, fault_at + (answered or 0))
        progressed = None
        while time.time() < deadline + RECOVER_TIMEOUT:
            progressed = db_read(lambda: first_decision_after(progress_from))
            if progressed is not None:
                break
            time.sleep(1)
        result = {
            "fault": kind,
            **what,
            "at": datetime.fromtimestamp(fault_at, UTC).isoformat(timespec="seconds"),
            "answering_again_s": answered,
            "pipeline_progress_s": None if progressed is None else round(progressed - fault_at, 2),
        }
        if kind == "llm_storm":
            storm_end = fault_at + self.storm_seconds
            time.sleep(max(0.0, storm_end - time.time()))
            back = None
            while time.time() < storm_end + RECOVER_TIMEOUT:
                back = db_read(lambda: first_llm_decision_after(storm_end))
                if back is not None:
                    break
                time.sleep(1)
            result["llm_answers"] = dict(self.fake.counts)
            result["decisions_on_local_fallback"] = db_read(
                lambda: llm_fallbacks_between(fault_at, storm_end)
            )
            result["llm_decisions_again_after_storm_s"] = None if back is None else round(back - storm_end, 2)
        if kind == "web":
            result["webhook_answers_so_far"] = dict(self.sender.answers)
        result["recovered"] = answered is not None and progressed is not None
        if kind == "llm_storm":
            result["recovered"] = (
                result["recovered"] and result["llm_decisions_again_after_storm_s"] is not None
            )
        # The launcher's count of what it restarted, once Redis holds it again.
        after = None
        for _ in range(30):
            after = self.product.restarts()
            if after is not None and restarts_before is not None and after != restarts_before:
                break
            if kind in ("web", "llm_storm") and after is not None:
                break
            time.sleep(1)
        if after is not None and restarts_before is not None:
            result["launcher_restarts"] = {
                name: count - restarts_before.get(name, 0)
                for name, count in after.items()
                if count != restarts_before.get(name, 0)
            }
        log(
            f"  answering again after {result['answering_again_s']} s, pipeline progress after "
            f"{result['pipeline_progress_s']} s, restarts {result.get('launcher_restarts')}"
        )
        self.results.append(result)
        return result


def settle(source: str, sender: Sender, *, quiet_for: float, timeout: float) -> tuple[float, dict]:
    """Wait until nothing is left to do, or nothing changed for ``quiet_for`` seconds."""
    started = time.monotonic()
    accepted = sender.accepted()
    last, changed_at, shown_at = None, time.monotonic(), 0.0
    while time.monotonic() - started < timeout:
        left = db_read(lambda: outstanding(source, accepted))
        if left is not None:
            if left != last:
                last, changed_at = left, time.monotonic()
            if time.monotonic() - shown_at >= 30:
                shown_at = time.monotonic()
                log(f"settling: {left}")
            if not (left["not_fully_decided"] or left["without_disposition"] or left["runs_not_done"]):
                break
            if time.monotonic() - changed_at >= quiet_for:
                log(f"nothing changed for {quiet_for:.0f} s; reconciling what is there")
                break
        time.sleep(5)
    return time.monotonic() - started, last or {}


def verdict(figures: dict, faults: list[dict]) -> dict:
    return {
        "accepted_tickets_lost": figures["accepted_not_stored"],
        "decisions_without_disposition": figures["decisions_without_disposition"],
        "applied_twice": figures["applied_twice"],
        "runs_stranded": figures["runs_stranded"],
        "every_fault_recovered": all(f["recovered"] for f in faults),
        "slowest_answering_again_s": max((f["answering_again_s"] or 0 for f in faults), default=0),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10, help="how long tickets are sent")
    parser.add_argument("--rate", type=float, default=2, help="tickets per second")
    parser.add_argument("--storm", type=float, default=60, help="seconds the fake API storms")
    parser.add_argument(
        "--settle-timeout", type=float, default=1200, help="give the sweeps this long at most"
    )
    parser.add_argument("--out", type=Path, default=REPO_DIR / "bench/results/faults.json")
    parser.add_argument("--smoke", action="store_true", help="one fault of each kind in about a minute")
    args = parser.parse_args(argv)
    if args.smoke:  # small defaults; flags given still win
        parser.set_defaults(minutes=1, rate=1, storm=10, settle_timeout=150, out=SMOKE_OUT)
        args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))  # runs the finally blocks

    kinds = SMOKE_FAULTS if args.smoke else FULL_FAULTS
    sweep_grace = SMOKE_SWEEP_GRACE if args.smoke else None
    # The sweeps take work as lost after their grace and run every minute: wait longer than both.
    quiet_for = max((sweep_grace or {"run": 300}).values()) + 150
    started_at = datetime.now(UTC)
    source = f"faults-{started_at:%Y%m%d%H%M%S}"
    root = Path(tempfile.mkdtemp(prefix="csai-faults-"))
    root.chmod(0o755)  # as root, embedded PostgreSQL runs as another user and must reach var/
    fake = FakeAnthropic(keep_requests=False, hang_seconds=30, seed=15).start()
    product = Product(root=root, llm_url=fake.url, sweep_grace=sweep_grace)
    prober = sender = None
    try:
        log(f"starting the product in {root} ...")
        startup = product.start()
        log(f"ready after {startup:.0f} s at {product.url}")
        django_on(product)
        phases = policies_autonomous()
        sender = Sender(
            url=product.url, secret=product.secrets()["CSAI_WEBHOOK_SECRET"], source=source, rate=args.rate
        )
        prober = Prober(product.url)
        prober.start()
        seconds = args.minutes * 60
        run = FaultRun(product=product, sender=sender, prober=prober, fake=fake, storm_seconds=args.storm)
        sending = threading.Thread(target=sender.run, args=(seconds,), daemon=True)
        t0 = time.monotonic()
        sending.start()
        spacing = seconds / (len(kinds) + 1)
        for index, kind in enumerate(kinds):
            due = t0 + spacing * (index + 1)
            while time.monotonic() < due:
                time.sleep(min(30.0, due - time.monotonic()))
                log(
                    f"sending: {len(sender.deliveries)} sent, {len(sender.accepted())} accepted, "
                    f"answers {dict(sender.answers)}"
                )
            run.measure(kind)
        sending.join()
        sending_seconds = time.monotonic() - t0
        log(f"stopped sending after {sending_seconds:.0f} s; waiting for deliveries in hand")
        sender.stop(wait=RECOVER_TIMEOUT)
        accepted = sender.accepted()
        settle_seconds, left = settle(source, sender, quiet_for=quiet_for, timeout=args.settle_timeout)
        figures = db_read(lambda: reconcile(source, accepted))
        restarts = product.restarts()
    finally:
        if prober is not None:
            prober.stop()
        log("stopping the product ...")
        product.stop()
        log_tail = product.log_tail(20000)
        fake.stop()
        shutil.rmtree(root, ignore_errors=True)
    deliveries = sender.deliveries.values()
    results = {
        "benchmark": "faults",
        "timestamp": started_at.isoformat(timespec="seconds"),
        "machine": {
            "nproc": len(os.sched_getaffinity(0)),
            "platform": platform.platform(),
            "loadavg_after": [round(x, 2) for x in os.getloadavg()],
        },
        "settings": {
            "smoke": args.smoke,
            "minutes": args.minutes,
            "rate_per_s": args.rate,
            "storm_s": args.storm,
            "sweep_grace_s": sweep_grace or "defaults",
            "policy_phases": phases,
            "autonomy_threshold": AUTONOMY_THRESHOLD,
        },
        "startup_s": round(startup, 1),
        "sending_s": round(sending_seconds, 1),
        "settle_s": round(settle_seconds, 1),
        "sender": {
            "tickets": len(sender.deliveries),
            "accepted": len(accepted),
            "created_201": sum(1 for d in deliveries if d.status == 201),
            "found_200_on_retry": sum(1 for d in deliveries if d.status == 200),
            "refused": dict(Counter(d.status for d in deliveries if d.status and d.status >= 300)),
            "gave_up": sum(1 for d in deliveries if d.status == 0),
            "retried_tickets": sum(1 for d in deliveries if d.attempts > 1),
            "answers": dict(sender.answers),
        },
        "faults": run.results,
        "launcher_restarts_total": restarts,
        "reconciliation": figures,
        "left_when_settled": left,
    }
    results["verdict"] = verdict(figures, run.results) if figures else None
    if not figures:
        results["launcher_log_tail"] = log_tail[-4000:]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(
        json.dumps(
            {"verdict": results["verdict"], "faults": run.results, "reconciliation": figures}, indent=2
        )
    )
    log(f"results: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

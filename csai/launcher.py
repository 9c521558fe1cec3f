"""``make run``: the whole product on one machine, on embedded Postgres and Redis.

Prepares the database (migrate, static files, demo and admin logins, the agents' starter
knowledge and models), then supervises the web server (gunicorn), a Celery worker, Celery
beat and, unless the environment names a mail backend or host, a local SMTP sink that writes
every mail under ``var/mail/`` (``csai.mailsink``). On an empty database it also builds the
demo history in the background (``manage.py demo_journey``: 30 days of a demo team's work,
replayed through the agents and the autonomy controller, then today's demo tickets), and
once that is done starts the demo traffic generator (a ticket a minute). The banner with the
addresses and logins is printed once everything answers, again when the demo history is
built, and on request: ``python -m csai.launcher --info``.
A child that exits is started again after a backoff (1 s, doubling to 30 s; back to 1 s once
it has stayed up a minute); so are the embedded PostgreSQL and Redis, on the same data and
address. Each restart is logged and counted in ``/metrics`` (``csai_launcher_restarts``).
Only Ctrl-C or SIGTERM stops everything: every child, then the embedded servers; nothing
is left. Generated secrets are kept in ``var/secrets.json`` (see settings), so a second
start reuses them.
"""

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from csai import embedded
from csai.celery import worker_queues
from csai.embedded import REPO_DIR, VAR_DIR

BIN = Path(sys.executable).parent
STOP_GRACE_SECONDS = 20
READY_TIMEOUT_SECONDS = 120
FIRST_BACKOFF_SECONDS = 1.0
MAX_BACKOFF_SECONDS = 30.0
STABLE_SECONDS = 60.0  # up this long: the next exit is a new incident, restarted after 1 s
WORKER_READY_SECONDS = 60
DEMO_RATE = 1 / 60  # tickets per second: a ticket a minute
DEMO_HISTORY = 1000  # tickets the demo history replays over the last 30 days
HISTORY = "demo-history"  # the one-shot child that builds it


@dataclass(frozen=True)
class Prepared:
    env: dict[str, str]
    demo_password: str | None  # generated now: shown once
    admin_password: str | None  # generated now: shown once
    fresh: bool  # the database had no tickets: demo data is loaded


def _prepare() -> Prepared:
    """Set up Django in this process and the database; return the children's env."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "csai.settings")
    os.environ.setdefault("CSAI_SECURE_COOKIES", "false")  # plain http on localhost
    # Webhook receivers tried out next to `make run` listen on this machine.
    os.environ.setdefault("CSAI_WEBHOOK_ALLOW_PRIVATE", "true")
    import django

    django.setup()  # starts (or joins) the embedded servers and takes a lease on them
    from django.conf import settings
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=0)
    call_command("collectstatic", interactive=False, verbosity=0)
    from lab.services import admin_user_ensure, demo_users_ensure
    from tickets.models import Ticket

    fresh = not Ticket.objects.exists()
    password = demo_users_ensure(password=os.environ.get("CSAI_DEMO_PASSWORD") or None)
    admin_password = admin_user_ensure(password=os.environ.get("CSAI_ADMIN_PASSWORD") or None)
    call_command("seed_agents")  # before any demo ticket, so the agents can decide them
    # The children use these servers and secrets as given; they start nothing themselves.
    env = {
        **os.environ,
        "DATABASE_URL": settings.DATABASE_URL,
        "REDIS_URL": settings.REDIS_URL,
        "SECRET_KEY": settings.SECRET_KEY,
        "CSAI_WEBHOOK_SECRET": settings.CSAI_WEBHOOK_SECRET,
        "PYTHONUNBUFFERED": "1",
    }
    return Prepared(env, password, admin_password, fresh)


def _mail_settings() -> dict[str, str]:
    """The children's mail settings: the local SMTP sink on a free port, unless the
    environment names a backend or an SMTP host (then it is used as given)."""
    if os.environ.get("EMAIL_BACKEND") or os.environ.get("EMAIL_HOST"):
        return {}
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return {
        "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
        "EMAIL_HOST": "127.0.0.1",
        "EMAIL_PORT": str(port),
        "CSAI_MAIL_SINK_DIR": str(VAR_DIR / "mail"),
    }


def _demo_rate() -> float:
    return float(os.environ.get("CSAI_DEMO_RATE") or DEMO_RATE)


def _demo_history() -> int:
    return int(os.environ.get("CSAI_DEMO_HISTORY") or DEMO_HISTORY)


def _children(port: int, *, fresh: bool, mail: dict[str, str] | None = None) -> dict[str, list[str]]:
    rate = _demo_rate()
    log_level = os.environ.get("LOG_LEVEL", "INFO")
    commands = {}
    if mail:
        commands["mail-sink"] = [
            sys.executable,
            "-m",
            "csai.mailsink",
            f"--port={mail['EMAIL_PORT']}",
            f"--folder={mail['CSAI_MAIL_SINK_DIR']}",
        ]
    commands |= {
        "web": [
            str(BIN / "gunicorn"),
            "csai.wsgi:application",
            f"--bind={os.environ.get('CSAI_BIND', '127.0.0.1')}:{port}",
            "--workers=2",
            "--threads=4",
            "--graceful-timeout=10",
        ],
        "worker": [
            str(BIN / "celery"),
            "-A",
            "csai",
            "worker",
            f"--queues={worker_queues()}",
            "--concurrency=2",
            f"--loglevel={log_level}",
        ],
        "beat": [
            str(BIN / "celery"),
            "-A",
            "csai",
            "beat",
            f"--schedule={VAR_DIR / 'celerybeat-schedule'}",
            f"--loglevel={log_level}",
        ],
    }
    if fresh and _demo_history() > 0:
        commands[HISTORY] = [
            sys.executable,
            str(REPO_DIR / "manage.py"),
            "demo_journey",
            f"--tickets={_demo_history()}",
        ]
    if rate > 0:
        commands["demo-traffic"] = [
            sys.executable,
            str(REPO_DIR / "manage.py"),
            "demo_traffic",
            f"--rate={rate:g}",
            f"--url=http://127.0.0.1:{port}",
        ]
    return commands


def _log(message: str) -> None:
    print(f"csai: {message}", file=sys.stderr, flush=True)


@dataclass
class Backoff:
    """When to try again after a failure: 1 s, doubling to 30 s, reset by a stable run."""

    failures: int = 0
    up_since: float = 0.0
    retry_at: float | None = None

    def failed(self, now: float) -> float:
        if now - self.up_since >= STABLE_SECONDS:
            self.failures = 0
        delay = min(MAX_BACKOFF_SECONDS, FIRST_BACKOFF_SECONDS * 2**self.failures)
        self.failures += 1
        self.retry_at = now + delay
        return delay

    def due(self, now: float) -> bool:
        return self.retry_at is not None and now >= self.retry_at

    def started(self, now: float) -> None:
        self.up_since, self.retry_at = now, None


class Supervisor:
    """Keeps the children and the embedded servers running; counts what it restarts.

    A child in ``once`` runs to its end and is not started again (its exit code is kept in
    ``finished``); a child in ``after`` starts when the one-shot child it names has ended; a
    child in ``deferred`` starts when ``launch`` is called.
    """

    def __init__(
        self,
        commands: dict[str, list[str]],
        env: dict[str, str],
        *,
        servers: list[str],
        once: tuple[str, ...] = (),
        after: dict[str, str] | None = None,
        deferred: tuple[str, ...] = (),
    ):
        self.commands, self.env, self.servers = commands, env, servers
        self.once = set(once) & set(commands)
        self.after = {
            name: first for name, first in (after or {}).items() if name in commands and first in self.once
        }
        self.deferred = set(deferred) & set(commands)
        self.finished: dict[str, int] = {}
        self.processes: dict[str, subprocess.Popen] = {}
        self.backoff = {name: Backoff() for name in [*servers, *commands]}
        self.restarts = {name: 0 for name in [*servers, *commands]}
        self._unreported = True

    def start(self) -> None:
        now = time.monotonic()
        for name in self.commands:
            if name in self.after or name in self.deferred:
                continue  # waits for its one-shot child, or for launch()
            self._spawn(name)
            self.backoff[name].started(now)
        for name in self.servers:
            self.backoff[name].started(now)
        self.report()

    def launch(self, name: str) -> None:
        """Start a deferred child now."""
        if name in self.deferred:
            self.deferred.discard(name)
            self._spawn(name)
            self.backoff[name].started(time.monotonic())

    def _spawn(self, name: str) -> None:
        # Own session: a terminal Ctrl-C reaches only this supervisor, which then stops
        # the children in order.
        self.processes[name] = subprocess.Popen(  # noqa: S603 - our own fixed commands
            self.commands[name], env=self.env, cwd=REPO_DIR, start_new_session=True
        )

    def tick(self) -> None:
        """Notice what died, restart what is due, and publish the counts."""
        now = time.monotonic()
        for name, process in list(self.processes.items()):
            if name in self.once:
                if name not in self.finished and process.poll() is not None:
                    _reap_group(process)
                    self.finished[name] = process.returncode
                    if process.returncode:
                        _log(f"{name} failed with code {process.returncode}; see its output above")
                continue
            backoff = self.backoff[name]
            if backoff.retry_at is None and process.poll() is not None:
                _reap_group(process)
                delay = backoff.failed(now)
                _log(f"{name} exited with code {process.returncode}; restarting it in {delay:.0f}s")
            elif backoff.due(now):
                self._spawn(name)
                self._restarted(name)
        for name, first in list(self.after.items()):
            if first in self.finished:
                del self.after[name]
                self._spawn(name)
                self.backoff[name].started(now)
        down = set(embedded.down(postgres="postgres" in self.servers, redis="redis" in self.servers))
        for name in self.servers:
            backoff = self.backoff[name]
            if backoff.retry_at is None and name in down:
                delay = backoff.failed(now)
                _log(f"embedded {name} is not running; starting it again in {delay:.0f}s")
            elif backoff.due(now):
                try:
                    started = embedded.ensure_running(postgres=name == "postgres", redis=name == "redis")
                except Exception as exc:  # whatever the failure: log it and try again later
                    delay = backoff.failed(time.monotonic())
                    _log(f"embedded {name} did not start ({exc!r}); trying again in {delay:.0f}s")
                else:
                    if started:
                        self._restarted(name)
                    else:  # another process of this checkout started it first
                        backoff.started(time.monotonic())
        if self._unreported:
            self.report()

    def _restarted(self, name: str) -> None:
        self.backoff[name].started(time.monotonic())
        self.restarts[name] += 1
        self._unreported = True
        _log(f"{name} restarted (restart {self.restarts[name]})")

    def report(self) -> None:
        """Publish the restart counts for /metrics; kept for the next tick if Redis is away."""
        from csai import metrics

        self._unreported = not metrics.record_launcher_restarts(self.restarts)

    def stop(self) -> None:
        _stop(self.processes)


def _reap_group(process: subprocess.Popen) -> None:
    """Kill what the dead child left in its session (gunicorn or pool workers): orphans."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


def _wait_ready(url: str, keep_going: Callable[[], bool], tick: Callable[[], None]) -> bool:
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while time.monotonic() < deadline and keep_going():
        tick()
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - loopback
                if response.status == 200:
                    return True
        except OSError:
            pass
        time.sleep(0.5)
    return False


def _stop(processes: dict[str, subprocess.Popen]) -> None:
    for process in processes.values():
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    for name, process in processes.items():
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            print(f"csai: {name} did not stop in time; killing it", file=sys.stderr)
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def _wait_worker(keep_going: Callable[[], bool], tick: Callable[[], None]) -> bool:
    """Until a Celery worker answers a ping (its start-up log is then printed)."""
    from csai.celery import app

    deadline = time.monotonic() + WORKER_READY_SECONDS
    while time.monotonic() < deadline and keep_going():
        tick()
        with contextlib.suppress(Exception):  # the broker restarting: ask again
            if app.control.ping(timeout=1.0):
                return True
    return False


def _login_lines(*, demo_password: str | None, admin_password: str | None) -> list[str]:
    """Who can log in. A generated password is shown only when it was just generated."""
    if os.environ.get("CSAI_DEMO_PASSWORD"):
        demo = "password from CSAI_DEMO_PASSWORD"
    elif demo_password:
        demo = f"password {demo_password}   (shown once; set CSAI_DEMO_PASSWORD to choose it)"
    else:
        demo = "password as printed at their first start (or set CSAI_DEMO_PASSWORD)"
    if os.environ.get("CSAI_ADMIN_PASSWORD"):
        admin = "password from CSAI_ADMIN_PASSWORD"
    elif admin_password:
        admin = f"password {admin_password}   (shown once; set CSAI_ADMIN_PASSWORD to choose it)"
    else:
        admin = "password as printed at its first start (or set CSAI_ADMIN_PASSWORD)"
    return [
        f"  logins      reviewer / supervisor, {demo}",
        f"              admin (superuser, for /admin/), {admin}",
    ]


def _demo_lines(*, history: str) -> list[str]:
    rate = _demo_rate()
    if rate <= 0:
        traffic = "off (CSAI_DEMO_RATE=0)"
    else:
        every = 1 / rate
        pace = "a ticket a minute" if round(every) == 60 else f"a ticket every {every:g} s"
        traffic = f"{pace} through the webhook (CSAI_DEMO_RATE={rate:.4g} per second; 0 turns it off)"
    return [f"  demo data   {history}", f"  demo traffic  {traffic}"]


def _banner(
    url: str,
    *,
    webhook_secret: str,
    history: str,
    demo_password: str | None = None,
    admin_password: str | None = None,
    mail: dict[str, str] | None = None,
) -> str:
    return "\n".join(
        [
            "",
            "  CSAI is running",
            f"  console     {url}/",
            f"  admin       {url}/admin/",
            f"  API docs    {url}/api/docs/",
            f"  webhook     POST {url}/api/v1/webhooks/tickets",
            *_login_lines(demo_password=demo_password, admin_password=admin_password),
            f"  webhook secret  {webhook_secret}",
            *([f"  mail        {mail['CSAI_MAIL_SINK_DIR']}/ (one .eml per mail sent)"] if mail else []),
            *_demo_lines(history=history),
            "  python -m csai.launcher --info prints this again. Ctrl-C stops everything.",
            "",
        ]
    )


def info() -> str:
    """The banner again, for ``--info``: from the environment and var/secrets.json only (no
    server is started); never a password, which was shown once."""
    port = int(os.environ.get("PORT", "8000"))
    url = f"http://127.0.0.1:{port}"
    secret = os.environ.get("CSAI_WEBHOOK_SECRET", "")
    path = VAR_DIR / "secrets.json"
    if not secret and path.exists():
        with contextlib.suppress(OSError, ValueError):
            secret = json.loads(path.read_text()).get("CSAI_WEBHOOK_SECRET", "")
    try:
        with urllib.request.urlopen(f"{url}/health/ready/", timeout=2) as response:  # noqa: S310 - loopback
            up = response.status == 200
    except OSError:
        up = False
    banner = _banner(
        url,
        webhook_secret=secret or "(none yet: generated at the first make run)",
        history="see the notice on the console pages",
    )
    if not up:
        banner = banner.replace("CSAI is running", f"CSAI is not answering on {url} (start it with make run)")
    return banner


def main() -> int:
    port = int(os.environ.get("PORT", "8000"))
    parent = os.getppid()
    stopping = False

    def on_signal(signum, frame):
        nonlocal stopping
        stopping = True

    def keep_going() -> bool:
        if os.getppid() != parent:
            # `make` was killed (it does not pass SIGTERM on): stop as if told to.
            _log("parent process went away")
            return False
        return not stopping

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):  # SIGHUP: terminal closed
        signal.signal(signum, on_signal)
    # The embedded servers this launcher watches: those not given by the environment.
    given = {"postgres": "DATABASE_URL", "redis": "REDIS_URL"}
    servers = [name for name, variable in given.items() if not os.environ.get(variable)]
    print("csai: preparing database and embedded services…", file=sys.stderr)
    prepared = _prepare()
    env = prepared.env
    mail = _mail_settings()
    env.update(mail)
    # The links in the customers' mail (survey, "solved") point at this server unless set.
    env.setdefault("CSAI_PUBLIC_URL", f"http://127.0.0.1:{port}")
    supervisor = Supervisor(
        _children(port, fresh=prepared.fresh, mail=mail),
        env,
        servers=servers,
        once=(HISTORY,),
        after={"demo-traffic": HISTORY},
        deferred=(HISTORY,),  # once the console answers: it does not slow the start down
    )
    url = f"http://127.0.0.1:{port}"

    def banner(history: str, **passwords) -> None:
        secret = env["CSAI_WEBHOOK_SECRET"]
        print(_banner(url, webhook_secret=secret, history=history, mail=mail, **passwords), flush=True)

    building = HISTORY in supervisor.commands
    try:
        supervisor.start()
        if _wait_ready(f"{url}/health/ready/", keep_going, supervisor.tick):
            supervisor.launch(HISTORY)
            _wait_worker(keep_going, supervisor.tick)
            time.sleep(1)  # the start-up lines of beat and the worker come first
            if building:
                history = (
                    "30 days of a demo team's history are being built in the background "
                    "(progress below and on the console)"
                )
            elif prepared.fresh:
                history = "off (CSAI_DEMO_HISTORY=0)"
            else:
                history = "as loaded at the first start"
            banner(history, demo_password=prepared.demo_password, admin_password=prepared.admin_password)
        elif keep_going():
            print(f"csai: not ready after {READY_TIMEOUT_SECONDS}s; see the logs above", file=sys.stderr)
            supervisor.launch(HISTORY)
        while keep_going():
            supervisor.tick()
            if building and HISTORY in supervisor.finished:
                building = False
                if supervisor.finished[HISTORY] == 0:
                    banner("30 days of a demo team's history, and today's demo tickets (see the dashboard)")
            time.sleep(0.5)
        return 0
    finally:
        print("csai: stopping…", file=sys.stderr)
        supervisor.stop()
        embedded.release()
        print("csai: stopped", file=sys.stderr)


if __name__ == "__main__":
    if sys.argv[1:] == ["--info"]:
        print(info())
        sys.exit(0)
    sys.exit(main())

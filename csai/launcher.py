"""``make run``: the whole product on one machine, on embedded Postgres and Redis.

Prepares the database (migrate, static files, demo users and data), then supervises the
web server (gunicorn), a Celery worker, Celery beat, the demo traffic generator and, unless
the environment names a mail backend or host, a local SMTP sink that writes every mail under
``var/mail/`` (``csai.mailsink``).
A child that exits is started again after a backoff (1 s, doubling to 30 s; back to 1 s once
it has stayed up a minute); so are the embedded PostgreSQL and Redis, on the same data and
address. Each restart is logged and counted in ``/metrics`` (``csai_launcher_restarts``).
Only Ctrl-C or SIGTERM stops everything: every child, then the embedded servers; nothing
is left. Generated secrets are kept in ``var/secrets.json`` (see settings), so a second
start reuses them.
"""

import contextlib
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


def _prepare() -> tuple[dict[str, str], str | None]:
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
    from lab.services import demo_users_ensure

    password = demo_users_ensure(password=os.environ.get("CSAI_DEMO_PASSWORD") or None)
    call_command("seed_agents")  # before the demo tickets, so the agents can decide them
    call_command("load_demo", if_empty=True)
    # The children use these servers and secrets as given; they start nothing themselves.
    env = {
        **os.environ,
        "DATABASE_URL": settings.DATABASE_URL,
        "REDIS_URL": settings.REDIS_URL,
        "SECRET_KEY": settings.SECRET_KEY,
        "CSAI_WEBHOOK_SECRET": settings.CSAI_WEBHOOK_SECRET,
        "PYTHONUNBUFFERED": "1",
    }
    return env, password


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


def _children(port: int, mail: dict[str, str] | None = None) -> dict[str, list[str]]:
    rate = os.environ.get("CSAI_DEMO_RATE", "0.2")
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
    if float(rate) > 0:
        commands["demo-traffic"] = [
            sys.executable,
            str(REPO_DIR / "manage.py"),
            "demo_traffic",
            f"--rate={rate}",
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
    """Keeps the children and the embedded servers running; counts what it restarts."""

    def __init__(self, commands: dict[str, list[str]], env: dict[str, str], *, servers: list[str]):
        self.commands, self.env, self.servers = commands, env, servers
        self.processes: dict[str, subprocess.Popen] = {}
        self.backoff = {name: Backoff() for name in [*servers, *commands]}
        self.restarts = {name: 0 for name in [*servers, *commands]}
        self._unreported = True

    def start(self) -> None:
        now = time.monotonic()
        for name in self.commands:
            self._spawn(name)
            self.backoff[name].started(now)
        for name in self.servers:
            self.backoff[name].started(now)
        self.report()

    def _spawn(self, name: str) -> None:
        # Own session: a terminal Ctrl-C reaches only this supervisor, which then stops
        # the children in order.
        self.processes[name] = subprocess.Popen(  # noqa: S603 - our own fixed commands
            self.commands[name], env=self.env, cwd=REPO_DIR, start_new_session=True
        )

    def tick(self) -> None:
        """Notice what died, restart what is due, and publish the counts."""
        now = time.monotonic()
        for name, process in self.processes.items():
            backoff = self.backoff[name]
            if backoff.retry_at is None and process.poll() is not None:
                _reap_group(process)
                delay = backoff.failed(now)
                _log(f"{name} exited with code {process.returncode}; restarting it in {delay:.0f}s")
            elif backoff.due(now):
                self._spawn(name)
                self._restarted(name)
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


def _banner(url: str, password: str | None, webhook_secret: str, mail: dict[str, str]) -> str:
    if os.environ.get("CSAI_DEMO_PASSWORD"):
        login_note = "password from CSAI_DEMO_PASSWORD"
    elif password:
        login_note = f"password {password}   (shown once; set CSAI_DEMO_PASSWORD to choose it)"
    else:
        login_note = "password as printed at their first start (or set CSAI_DEMO_PASSWORD)"
    return "\n".join(
        [
            "",
            "  CSAI is running",
            f"  console     {url}/",
            f"  admin       {url}/admin/",
            f"  API docs    {url}/api/docs/",
            f"  webhook     POST {url}/api/v1/webhooks/tickets",
            f"  logins      reviewer / supervisor, {login_note}",
            f"  webhook secret  {webhook_secret}",
            *([f"  mail        {mail['CSAI_MAIL_SINK_DIR']}/ (one .eml per mail sent)"] if mail else []),
            "  Ctrl-C stops everything.",
            "",
        ]
    )


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
    env, password = _prepare()
    mail = _mail_settings()
    env.update(mail)
    supervisor = Supervisor(_children(port, mail), env, servers=servers)
    try:
        supervisor.start()
        url = f"http://127.0.0.1:{port}"
        if _wait_ready(f"{url}/health/ready/", keep_going, supervisor.tick):
            print(_banner(url, password, env["CSAI_WEBHOOK_SECRET"], mail), flush=True)
        elif keep_going():
            print(f"csai: not ready after {READY_TIMEOUT_SECONDS}s; see the logs above", file=sys.stderr)
        while keep_going():
            supervisor.tick()
            time.sleep(0.5)
        return 0
    finally:
        print("csai: stopping…", file=sys.stderr)
        supervisor.stop()
        embedded.release()
        print("csai: stopped", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())

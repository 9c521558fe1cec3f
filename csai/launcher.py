"""``make run``: the whole product on one machine, on embedded Postgres and Redis.

Prepares the database (migrate, static files, demo users and data), then supervises the
web server (gunicorn), a Celery worker, Celery beat and the demo traffic generator.
Ctrl-C or SIGTERM stops every child and then the embedded servers; nothing is left.
Generated secrets are kept in ``var/secrets.json`` (see settings), so a second start reuses them.
"""

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from csai import embedded
from csai.celery import worker_queues
from csai.embedded import REPO_DIR, VAR_DIR

BIN = Path(sys.executable).parent
STOP_GRACE_SECONDS = 20
READY_TIMEOUT_SECONDS = 120


def _prepare() -> tuple[dict[str, str], str | None]:
    """Set up Django in this process and the database; return the children's env."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "csai.settings")
    os.environ.setdefault("CSAI_SECURE_COOKIES", "false")  # plain http on localhost
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


def _children(port: int) -> dict[str, list[str]]:
    rate = os.environ.get("CSAI_DEMO_RATE", "0.2")
    log_level = os.environ.get("LOG_LEVEL", "INFO")
    commands = {
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


def _wait_ready(url: str, processes: dict[str, subprocess.Popen]) -> bool:
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if any(process.poll() is not None for process in processes.values()):
            return False
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


def _banner(url: str, password: str | None, webhook_secret: str) -> str:
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

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):  # SIGHUP: terminal closed
        signal.signal(signum, on_signal)
    print("csai: preparing database and embedded services…", file=sys.stderr)
    env, password = _prepare()
    processes: dict[str, subprocess.Popen] = {}
    try:
        for name, command in _children(port).items():
            # Own session: a terminal Ctrl-C reaches only this supervisor, which then
            # stops the children in order.
            processes[name] = subprocess.Popen(  # noqa: S603 - our own fixed commands
                command, env=env, cwd=REPO_DIR, start_new_session=True
            )
        url = f"http://127.0.0.1:{port}"
        if _wait_ready(f"{url}/health/ready/", processes):
            print(_banner(url, password, env["CSAI_WEBHOOK_SECRET"]), flush=True)
        elif not stopping:
            print(f"csai: not ready after {READY_TIMEOUT_SECONDS}s; see the logs above", file=sys.stderr)
        while not stopping:
            if os.getppid() != parent:
                # `make` was killed (it does not pass SIGTERM on): stop as if told to.
                print("csai: parent process went away", file=sys.stderr)
                break
            exited = [name for name, process in processes.items() if process.poll() is not None]
            if exited:
                print(f"csai: {', '.join(exited)} exited; stopping everything", file=sys.stderr)
                return 1
            time.sleep(0.5)
        return 0
    finally:
        print("csai: stopping…", file=sys.stderr)
        _stop(processes)
        embedded.release()
        print("csai: stopped", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())

"""`make run`'s supervisor, end to end: ready, working, and nothing left after Ctrl-C."""

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import psutil
import pytest

from csai.launcher import STABLE_SECONDS, Backoff
from tickets import webhooks

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


METRICS_TOKEN = "launcher-test-metrics-token"


@contextlib.contextmanager
def launch(demo_rate: str = "2", history: str = "0"):
    """The launcher on a private var/ folder and port, as `make run` starts it, with
    ``history`` tickets of demo history (1000 in `make run`).

    The folder is not under pytest's tmp_path: as root, PostgreSQL runs as another user, and
    every pytest session that starts meanwhile makes pytest's base folder root-only again.
    """
    port, var_dir = free_port(), Path(tempfile.mkdtemp(prefix="csai-launcher-")) / "var"
    env = {k: v for k, v in os.environ.items() if k not in {"PYTEST_VERSION", "DATABASE_URL", "REDIS_URL"}}
    env.update(
        CSAI_VAR_DIR=str(var_dir),
        PORT=str(port),
        CSAI_DEMO_RATE=demo_rate,
        CSAI_DEMO_PASSWORD="demo-pass-123",
        CSAI_ADMIN_PASSWORD="admin-pass-123",
        CSAI_DEMO_HISTORY=history,
        CSAI_METRICS_TOKEN=METRICS_TOKEN,
    )
    process = subprocess.Popen(  # noqa: S603
        [sys.executable, "-m", "csai.launcher"],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output: list[str] = []
    reader = threading.Thread(target=lambda: output.extend(process.stdout), daemon=True)
    reader.start()
    try:
        yield process, port, var_dir, output
    finally:
        if process.poll() is None:  # the test failed early: stop the children too, then insist
            process.terminate()
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
        subprocess.run([sys.executable, "-m", "csai.embedded", "stop"], env=env, cwd=REPO, check=False)  # noqa: S603
        shutil.rmtree(var_dir.parent, ignore_errors=True)


@pytest.fixture
def launched():
    with launch(history="8") as started:
        yield started


def wait_for(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.5)
    return False


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_make_run_serves_the_product_and_a_stop_signal_leaves_nothing_running(launched, stop_signal):
    process, port, var_dir, output = launched
    base = f"http://127.0.0.1:{port}"

    def ready_or_exited():
        return process.poll() is not None or any("CSAI is running" in line for line in output)

    assert wait_for(ready_or_exited, 120) and process.poll() is None, "".join(output)[-4000:]
    assert httpx.get(f"{base}/health/ready/").status_code == 200
    banner = "".join(output)
    secret = json.loads((var_dir / "secrets.json").read_text())["CSAI_WEBHOOK_SECRET"]
    assert secret in banner and "reviewer / supervisor" in banner and "admin (superuser" in banner
    assert "being built in the background" in banner and "demo-pass-123" not in banner

    # The signed webhook works with the printed secret, and the worker triages the ticket.
    body = json.dumps(
        {
            "source": "launcher-test",
            "external_id": "1",
            "subject": "Cannot log in",
            "body": "Login fails with E1043 since this morning.",
            "channel": "web_chat",
            "customer": {"external_id": "L-1", "name": "Lee", "tier": "BASIC"},
        }
    ).encode()
    signature = webhooks.sign(secret=secret, body=body)
    created = httpx.post(
        f"{base}/api/v1/webhooks/tickets",
        content=body,
        headers={"Content-Type": "application/json", webhooks.HEADER: signature},
    )
    assert created.status_code == 201

    # The demo login works and sees the ticket, decided by the four agents in the Celery worker.
    with httpx.Client(base_url=base) as browser:
        browser.get("/admin/login/")
        login = browser.post(
            "/admin/login/",
            data={
                "username": "supervisor",
                "password": "demo-pass-123",
                "csrfmiddlewaretoken": browser.cookies["csrftoken"],
                "next": "/admin/",
            },
            headers={"Referer": f"{base}/admin/login/"},
        )
        assert login.status_code in (200, 302) and "sessionid" in browser.cookies

        def decided():
            decisions = browser.get(f"/api/v1/tickets/{created.json()['ticket_id']}/decisions/").json()
            return {d["agent"] for d in decisions} == {"classifier", "selector", "escalation", "updates"}

        assert wait_for(decided, 90), "".join(output)[-4000:]
        ticket = browser.get(f"/api/v1/tickets/{created.json()['ticket_id']}/").json()
        assert ticket["stage"] == "end"

    # The demo history is built in the background, with its progress; then the banner again,
    # today's demo tickets, and the demo traffic flowing through the webhook.
    def history_built():
        return "today's demo tickets (see the dashboard)" in "".join(output)

    assert wait_for(history_built, 240), "".join(output)[-4000:]
    assert "csai: building demo history: 8 / 8 tickets" in "".join(output)
    with httpx.Client(base_url=base) as browser:
        browser.get("/admin/login/")
        login = browser.post(
            "/admin/login/",
            data={
                "username": "admin",
                "password": "admin-pass-123",
                "csrfmiddlewaretoken": browser.cookies["csrftoken"],
                "next": "/admin/",
            },
            headers={"Referer": f"{base}/admin/login/"},
        )
        assert login.status_code in (200, 302) and "sessionid" in browser.cookies
        sources = {t["source"] for t in browser.get("/api/v1/tickets/?page_size=200").json()["results"]}
        assert {"demo-history", "demo"} <= sources
        assert wait_for(lambda: child(process, "demo_traffic") is not None, 30)

    # The banner on request, from another shell: no password in it.
    info = subprocess.run(  # noqa: S603
        [sys.executable, "-m", "csai.launcher", "--info"],
        cwd=REPO,
        env={**os.environ, "CSAI_VAR_DIR": str(var_dir), "PORT": str(port)},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "CSAI is running" in info and secret in info and f"{base}/" in info
    assert "password as printed" in info

    family = psutil.Process(process.pid).children(recursive=True)
    postgres_pid = int((var_dir / "postgres" / "postmaster.pid").read_text().split()[0])
    redis_pid = int((var_dir / "redis" / "redis.pid").read_text())
    watched = [*family, psutil.Process(postgres_pid), psutil.Process(redis_pid)]
    assert len(family) >= 5  # web, worker, beat, demo traffic, mail sink (and their own children)
    assert child(process, "csai.mailsink") is not None and (var_dir / "mail").is_dir()

    process.send_signal(stop_signal)

    assert process.wait(timeout=90) == 0, "".join(output)[-4000:]
    gone, alive = psutil.wait_procs(watched, timeout=30)
    assert alive == [], [p.info for p in alive]


# --- supervision: what dies is started again; only a stop signal stops everything --------


WORKER_READY = re.compile(r"celery@\S+ ready\.")


def wait_until_ready(process, output) -> None:
    def ready_or_exited():
        return process.poll() is not None or any("CSAI is running" in line for line in output)

    assert wait_for(ready_or_exited, 180) and process.poll() is None, "".join(output)[-4000:]


def child(process, *words: str) -> psutil.Process | None:
    """The launcher's direct child whose command line holds every word."""
    with contextlib.suppress(psutil.NoSuchProcess):
        for candidate in psutil.Process(process.pid).children():
            with contextlib.suppress(psutil.NoSuchProcess):
                if all(word in candidate.cmdline() for word in words):
                    return candidate
    return None


def restarts(base: str) -> dict[str, float]:
    """``csai_launcher_restarts_total`` by process, as /metrics shows it."""
    try:
        response = httpx.get(f"{base}/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    except httpx.HTTPError:
        return {}
    counts = {}
    for line in response.text.splitlines():
        if line.startswith("csai_launcher_restarts_total{"):
            labels, _, value = line.rpartition(" ")
            counts[labels.split('process="')[1].split('"')[0]] = float(value)
    return counts


def answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=10).status_code == 200
    except httpx.HTTPError:
        return False


def stop_leaves_nothing(process, var_dir, output) -> None:
    family = psutil.Process(process.pid).children(recursive=True)
    postgres_pid = int((var_dir / "postgres" / "postmaster.pid").read_text().split()[0])
    redis_pid = int((var_dir / "redis" / "redis.pid").read_text())
    watched = [*family, psutil.Process(postgres_pid), psutil.Process(redis_pid)]

    process.send_signal(signal.SIGTERM)

    assert process.wait(timeout=90) == 0, "".join(output)[-4000:]
    gone, alive = psutil.wait_procs(watched, timeout=30)
    assert alive == [], [p.info for p in alive]


def test_a_killed_worker_is_started_again_while_the_web_keeps_answering():
    with launch(demo_rate="0.5") as (process, port, var_dir, output):
        base = f"http://127.0.0.1:{port}"
        wait_until_ready(process, output)
        worker = child(process, "worker")
        assert worker is not None

        worker.kill()

        def worker_back():
            again = child(process, "worker")
            started_twice = len(WORKER_READY.findall("".join(output))) == 2
            return again is not None and again.pid != worker.pid and started_twice

        assert wait_for(worker_back, 120), "".join(output)[-4000:]
        assert process.poll() is None
        assert answers(f"{base}/health/ready/")
        assert "worker exited with code -9; restarting it" in "".join(output)
        assert wait_for(lambda: restarts(base).get("worker") == 1, 60), restarts(base)
        assert restarts(base).get("web") == 0

        stop_leaves_nothing(process, var_dir, output)


def test_killed_embedded_redis_and_postgres_are_started_again_and_the_web_recovers():
    with launch(demo_rate="0.5") as (process, port, var_dir, output):
        base = f"http://127.0.0.1:{port}"
        wait_until_ready(process, output)
        redis_pid = int((var_dir / "redis" / "redis.pid").read_text())
        postgres_pid = int((var_dir / "postgres" / "postmaster.pid").read_text().split()[0])

        os.kill(redis_pid, signal.SIGKILL)
        assert wait_for(lambda: restarts(base).get("redis") == 1, 120), "".join(output)[-4000:]
        os.kill(postgres_pid, signal.SIGKILL)
        assert wait_for(lambda: restarts(base).get("postgres") == 1, 120), "".join(output)[-4000:]

        assert wait_for(lambda: answers(f"{base}/health/ready/"), 120), "".join(output)[-4000:]
        assert process.poll() is None
        assert int((var_dir / "redis" / "redis.pid").read_text()) != redis_pid
        assert int((var_dir / "postgres" / "postmaster.pid").read_text().split()[0]) != postgres_pid

        stop_leaves_nothing(process, var_dir, output)


def test_restarts_back_off_from_1s_to_30s_and_start_over_after_a_stable_run():
    backoff = Backoff()
    backoff.started(0.0)

    delays = []
    for _ in range(7):  # a child that exits again as soon as it is started
        delays.append(backoff.failed(backoff.up_since + 1))
        backoff.started(backoff.retry_at)

    assert delays == [1, 2, 4, 8, 16, 30, 30]
    assert backoff.failed(backoff.up_since + STABLE_SECONDS) == 1  # it stayed up: a new incident


def test_make_run_starts_a_mail_sink_unless_the_environment_names_a_mail_server(monkeypatch):
    from csai.launcher import _children, _mail_settings

    monkeypatch.delenv("EMAIL_BACKEND", raising=False)
    monkeypatch.delenv("EMAIL_HOST", raising=False)
    mail = _mail_settings()
    assert mail["EMAIL_BACKEND"] == "django.core.mail.backends.smtp.EmailBackend"
    assert mail["EMAIL_HOST"] == "127.0.0.1" and mail["CSAI_MAIL_SINK_DIR"].endswith("mail")
    sink = _children(8000, fresh=False, mail=mail)["mail-sink"]
    assert sink[1:3] == ["-m", "csai.mailsink"] and f"--port={mail['EMAIL_PORT']}" in sink

    monkeypatch.setenv("EMAIL_HOST", "smtp.example.com")
    assert _mail_settings() == {} and "mail-sink" not in _children(8000, fresh=False, mail={})


def test_info_prints_the_banner_again_without_starting_anything(tmp_path):
    var_dir = tmp_path / "var"
    var_dir.mkdir()
    secrets = {"CSAI_WEBHOOK_SECRET": "the-secret", "SECRET_KEY": "k"}
    (var_dir / "secrets.json").write_text(json.dumps(secrets))
    env = {k: v for k, v in os.environ.items() if not k.startswith("CSAI_")}
    env.update(CSAI_VAR_DIR=str(var_dir), PORT=str(free_port()))

    result = subprocess.run(  # noqa: S603
        [sys.executable, "-m", "csai.launcher", "--info"], cwd=REPO, env=env, capture_output=True, text=True
    )

    assert result.returncode == 0, result.stderr
    assert "is not answering" in result.stdout and "start it with make run" in result.stdout
    assert "the-secret" in result.stdout and "admin (superuser" in result.stdout
    assert "password as printed" in result.stdout and "a ticket a minute" in result.stdout
    assert sorted(p.name for p in var_dir.iterdir()) == ["secrets.json"]  # nothing started
    assert "SECRET_KEY" not in result.stdout and '"k"' not in result.stdout

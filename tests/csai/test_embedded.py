"""Embedded Postgres and Redis: started on demand, shared, and stopped by the last user."""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import redis

REPO = Path(__file__).resolve().parents[2]
USE_SERVERS = """
import sys, psycopg, redis
from csai import embedded
endpoints = embedded.acquire(postgres=True, redis=True)
from urllib.parse import unquote
host = unquote(endpoints.database_url.split("@", 1)[1].rsplit("/", 1)[0])
with psycopg.connect(host=host, user="postgres", dbname="csai") as conn:
    conn.execute("CREATE TABLE IF NOT EXISTS kept (n int)")
    conn.execute("INSERT INTO kept VALUES (1)")
    count = conn.execute("SELECT count(*) FROM kept").fetchone()[0]
redis.Redis.from_url(endpoints.redis_url).incr("starts")
print(count, flush=True)
if len(sys.argv) > 1:
    sys.stdin.readline()  # hold the lease until told to go
"""


@pytest.fixture
def var_dir():
    """Not under pytest's tmp_path: as root, PostgreSQL runs as another user, and every
    pytest session that starts meanwhile makes pytest's base folder root-only again."""
    folder = Path(tempfile.mkdtemp(prefix="csai-embedded-")) / "var"
    yield folder
    subprocess.run(
        [sys.executable, "-m", "csai.embedded", "stop"], env=env_for(folder), cwd=REPO, check=False
    )  # noqa: S603
    shutil.rmtree(folder.parent, ignore_errors=True)


def env_for(folder: Path) -> dict:
    return {**os.environ, "CSAI_VAR_DIR": str(folder)}


def status(folder: Path) -> dict:
    result = subprocess.run(  # noqa: S603
        [sys.executable, "-m", "csai.embedded", "status"],
        env=env_for(folder),
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(result.stdout)


def run_user(folder: Path) -> str:
    return run_script(folder, USE_SERVERS)


def test_a_process_starts_the_servers_and_stops_them_when_it_exits(var_dir):
    assert run_user(var_dir) == "1"

    after = status(var_dir)
    assert (after["postgres_running"], after["redis_running"]) == (False, False)


def test_data_survives_a_restart_of_the_servers(var_dir):
    run_user(var_dir)

    assert run_user(var_dir) == "2"


def test_a_second_process_shares_the_servers_and_the_last_one_stops_them(var_dir):
    holder = subprocess.Popen(  # noqa: S603
        [sys.executable, "-c", USE_SERVERS, "hold"],
        env=env_for(var_dir),
        cwd=REPO,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "1"

        assert run_user(var_dir) == "2"  # used the holder's servers ...
        during = status(var_dir)
        assert (during["postgres_running"], during["redis_running"]) == (True, True)  # ... and left them
    finally:
        holder.communicate("go\n", timeout=60)

    after = status(var_dir)
    assert (after["postgres_running"], after["redis_running"]) == (False, False)


CRASH_AFTER_ENQUEUE = """
import os, signal, time
from celery import Celery
from csai import embedded
endpoints = embedded.acquire(postgres=False, redis=True)
Celery(broker=endpoints.redis_url).send_task("tickets.tasks.ticket_intake", args=[42], queue="tickets")
time.sleep(1.5)  # the append-only file is fsynced every second
os.kill(int((embedded.VAR_DIR / "redis" / "redis.pid").read_text()), signal.SIGKILL)
"""
COUNT_QUEUED = """
import redis
from csai import embedded
endpoints = embedded.acquire(postgres=False, redis=True)
print(redis.Redis.from_url(endpoints.redis_url).llen("tickets"))
"""


def run_script(folder: Path, script: str) -> str:
    result = subprocess.run(  # noqa: S603
        [sys.executable, "-c", script],
        env=env_for(folder),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_a_queued_task_survives_a_redis_crash(var_dir):
    run_script(var_dir, CRASH_AFTER_ENQUEUE)
    assert status(var_dir)["redis_running"] is False

    assert run_script(var_dir, COUNT_QUEUED) == "1"


# --- start, and servers that die ------------------------------------------------------


def embedded_cli(folder: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(  # noqa: S603
        [sys.executable, "-m", "csai.embedded", *args],
        env=env_for(folder),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )


def wait_for(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.5)
    return False


def start_until_running(folder: Path, *names: str) -> dict:
    """``start`` again until it succeeds: a killed postmaster's backends take a moment to exit."""

    def started():
        return embedded_cli(folder, "start", *names).returncode == 0

    assert wait_for(started, 90), embedded_cli(folder, "start", *names).stderr
    return status(folder)


def test_start_keeps_the_servers_running_until_stop(var_dir):
    result = embedded_cli(var_dir, "start")

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["kept_running"] is True
    assert run_user(var_dir) == "1"  # a user comes and goes ...
    during = status(var_dir)
    assert (during["postgres_running"], during["redis_running"]) == (True, True)  # ... and they stay

    embedded_cli(var_dir, "stop")
    after = status(var_dir)
    assert (after["postgres_running"], after["redis_running"], after["kept_running"]) == (False, False, False)


def test_a_killed_redis_starts_again_on_its_port_with_its_queue(var_dir):
    assert embedded_cli(var_dir, "start", "redis").returncode == 0
    port = status(var_dir)["redis_port"]
    held = redis.Redis(port=port, socket_timeout=5)
    held.rpush("kept", "1")
    time.sleep(1.5)  # the append-only file is fsynced every second
    os.kill(int((var_dir / "redis" / "redis.pid").read_text()), signal.SIGKILL)
    assert wait_for(lambda: not status(var_dir)["redis_running"], 30)

    after = start_until_running(var_dir, "redis")

    assert after["redis_running"] and after["redis_port"] == port
    assert held.llen("kept") == 1  # a client holding the old URL reconnects


def test_a_killed_postgres_starts_again_with_its_data(var_dir):
    assert embedded_cli(var_dir, "start", "postgres").returncode == 0
    assert run_user(var_dir) == "1"
    postmaster = int((var_dir / "postgres" / "postmaster.pid").read_text().split()[0])
    os.kill(postmaster, signal.SIGKILL)
    assert wait_for(lambda: not status(var_dir)["postgres_running"], 30)

    after = start_until_running(var_dir, "postgres")

    assert after["postgres_running"]
    assert run_user(var_dir) == "2"

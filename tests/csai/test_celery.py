"""A real Celery worker rides out a Redis outage: it reconnects and takes tasks again."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis
from celery import Celery

from csai import metrics
from tests.conftest import start_worker

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]

REPO = Path(__file__).resolve().parents[2]


def embedded_cli(folder: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(  # noqa: S603
        [sys.executable, "-m", "csai.embedded", *args],
        env={**os.environ, "CSAI_VAR_DIR": str(folder)},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def own_redis(tmp_path):
    """A Redis of this test's own, which it may kill without disturbing the others."""
    folder = tmp_path / "var"
    started = embedded_cli(folder, "start", "redis")
    assert started.returncode == 0, started.stderr
    port = int((folder / "redis" / "port").read_text())
    try:
        yield folder, f"redis://127.0.0.1:{port}/0"
    finally:
        embedded_cli(folder, "stop")


def finished(url: str, task: str) -> int:
    try:
        return int(redis.Redis.from_url(url).hget(metrics.TASKS, f"{task}|SUCCESS") or 0)
    except redis.ConnectionError:
        return 0


def test_a_worker_reconnects_after_redis_is_killed_and_started_again(own_redis, settings, tmp_path):
    folder, url = own_redis
    settings.REDIS_URL = url
    worker = start_worker(tmp_path / "worker.log")
    broker = Celery(broker=url, set_as_current=False)  # the product's tasks keep sending through its own app
    try:
        assert worker.wait_for(lambda: "ready" in worker.log.read_text(), 90), worker.output()
        # A task due later is held by the worker, delivered and unacknowledged, when Redis dies.
        broker.send_task("tickets.tasks.sla_refresh", queue="tickets", countdown=600)
        assert worker.wait_for(lambda: "received" in worker.log.read_text(), 60), worker.output()

        os.kill(int((folder / "redis" / "redis.pid").read_text()), signal.SIGKILL)
        assert worker.wait_for(lambda: "Connection to broker lost" in worker.log.read_text(), 60)
        time.sleep(3)  # the outage lasts a few of the worker's reconnection attempts
        assert embedded_cli(folder, "start", "redis").returncode == 0

        broker.send_task("tickets.tasks.sla_refresh", queue="tickets")
        assert worker.wait_for(lambda: finished(url, "tickets.tasks.sla_refresh") >= 1, 120), worker.output()
        assert worker.process.poll() is None
    finally:
        broker.close()
        worker.process.terminate()
        worker.process.wait(timeout=60)

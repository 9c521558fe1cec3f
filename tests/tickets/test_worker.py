"""A real Celery worker process consumes the intake task from the real Redis broker."""

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings
from django.db import connection

from csai.celery import app as celery_app
from csai.celery import worker_queues
from tests.conftest import signed_post, ticket_payload
from tickets.models import Ticket

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]
REPO = Path(__file__).resolve().parents[2]


def purge_queues():
    with celery_app.connection_for_write() as conn:
        for queue in worker_queues().split(","):
            conn.default_channel.queue_purge(queue)


@dataclass
class Worker:
    process: subprocess.Popen
    log: Path

    def wait_for(self, predicate, timeout=60.0) -> bool:
        """Poll until ``predicate`` holds; give up early if the worker died."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.process.poll() is None:
            if predicate():
                return True
            time.sleep(0.2)
        return False

    def output(self) -> str:
        return self.log.read_text()[-3000:]


@pytest.fixture
def worker(tmp_path):
    """Start a worker on the test database; stop it afterwards."""
    db = connection.settings_dict
    env = {
        **os.environ,
        "DATABASE_URL": f"postgresql://{db['USER']}@{quote(db['HOST'], safe='')}/{db['NAME']}",
        "REDIS_URL": settings.REDIS_URL,
        "SECRET_KEY": settings.SECRET_KEY,
        "CSAI_WEBHOOK_SECRET": settings.CSAI_WEBHOOK_SECRET,
    }
    log = tmp_path / "worker.log"
    command = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "csai",
        "worker",
        "--pool=solo",
        "-Q",
        "default,tickets",
        "--loglevel=INFO",
    ]
    with open(log, "w") as out:
        process = subprocess.Popen(command, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)  # noqa: S603
    try:
        yield Worker(process, log)
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture
def queued_ticket(client):
    """A ticket delivered while no worker is running: its task waits in Redis."""
    purge_queues()
    response = signed_post(client, ticket_payload())
    assert response.status_code == 201
    return Ticket.objects.get(pk=response.json()["ticket_id"])


def test_a_worker_started_later_triages_the_queued_ticket(queued_ticket, worker):
    assert queued_ticket.stage == Ticket.Stage.TRIGGER

    def triaged():
        queued_ticket.refresh_from_db(fields=["stage"])
        return queued_ticket.stage == Ticket.Stage.CLASSIFIER

    assert worker.wait_for(triaged), worker.output()


def test_the_correlation_id_follows_the_ticket_into_the_worker_logs(queued_ticket, worker):
    def logged_lines():
        lines = []
        for line in worker.log.read_text().splitlines():
            try:
                lines.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # celery's start-up banner is plain text
        return [entry for entry in lines if entry.get("message") == "ticket entered triage"]

    assert worker.wait_for(logged_lines), worker.output()
    (entry,) = logged_lines()
    assert entry["correlation_id"] == queued_ticket.correlation_id
    assert entry["ticket_id"] == queued_ticket.pk

"""A real Celery worker process consumes the intake task from the real Redis broker."""

import json

import pytest

from tests.conftest import purge_queues, signed_post, ticket_payload
from tickets.models import Ticket

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]


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
        return queued_ticket.stage != Ticket.Stage.TRIGGER

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

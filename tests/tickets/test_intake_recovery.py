"""A ticket accepted while the broker is down is not lost: the sweep enqueues it later."""

import base64
import json
import socket
from datetime import timedelta

import pytest
import redis
from django.conf import settings
from django.utils import timezone

from csai.celery import app as celery_app
from csai.redis import redis_client_reset
from tests.conftest import signed_post, ticket_payload
from tests.factories import TicketFactory
from tickets import tasks
from tickets.models import Ticket

pytestmark = pytest.mark.django_db(transaction=True)


def queued_ticket_ids() -> list[int]:
    """Ticket ids of the intake messages waiting in the real Redis queue."""
    messages = redis.Redis.from_url(settings.REDIS_URL).lrange("tickets", 0, -1)
    bodies = [json.loads(base64.b64decode(json.loads(message)["body"])) for message in messages]
    return [args[0] for args, _kwargs, _embed in bodies]


@pytest.fixture(autouse=True)
def empty_queue():
    redis.Redis.from_url(settings.REDIS_URL).delete("tickets")


@pytest.fixture
def broker_down(monkeypatch):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    monkeypatch.setattr(celery_app.conf, "broker_url", f"redis://127.0.0.1:{closed}/0")
    # Fresh connection pools for the unreachable broker; monkeypatch puts the real ones back.
    monkeypatch.setattr(celery_app, "_pool", None)
    monkeypatch.setattr(celery_app.amqp, "_producer_pool", None)


def test_a_ticket_delivered_while_the_broker_is_down_is_still_accepted(client, broker_down):
    response = signed_post(client, ticket_payload())

    assert response.status_code == 201
    assert Ticket.objects.get().stage == Ticket.Stage.TRIGGER


def test_the_sweep_enqueues_tickets_whose_intake_never_ran():
    stuck = TicketFactory(created_at=timezone.now() - tasks.INTAKE_GRACE - timedelta(seconds=1))
    TicketFactory()  # just arrived: its own task is on the way
    TicketFactory(created_at=stuck.created_at, stage=Ticket.Stage.CLASSIFIER)  # already triaged

    assert tasks.intake_sweep() == "re-enqueued:1"
    assert queued_ticket_ids() == [stuck.pk]


@pytest.fixture
def redis_down(monkeypatch, broker_down):
    """Redis, as cache, counter store and broker, is unreachable."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    monkeypatch.setattr(settings, "REDIS_URL", f"redis://127.0.0.1:{closed}/0")
    redis_client_reset()
    yield
    redis_client_reset()


def test_tickets_are_still_accepted_while_redis_is_down(client, redis_down):
    response = signed_post(client, ticket_payload())

    assert response.status_code == 201
    assert Ticket.objects.get().stage == Ticket.Stage.TRIGGER  # the sweep takes it from here

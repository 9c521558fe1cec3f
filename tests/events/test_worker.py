"""Faults with real workers: a receiver that fails three times, a worker SIGKILLed while it
waits for the receiver's answer. Nothing lost; one receipt."""

import signal
import time
from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from events import services
from events.models import Delivery, Event, EventType
from tests.conftest import purge_queues, start_worker
from tests.events.conftest import WORKER_ENV
from tests.events.receiver import Answer
from tests.factories import TicketFactory
from tickets import services as ticket_services

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]


def resolve_a_ticket(supervisor) -> Event:
    """A person resolves a ticket; the event is queued for the worker when this commits."""
    with transaction.atomic():
        ticket_services.ticket_resolve(ticket=TicketFactory(), actor=supervisor)
    return Event.objects.get(type=EventType.TICKET_RESOLVED)


def test_a_receiver_failing_three_times_gets_one_receipt_with_one_webhook_id(
    receiver, endpoint_for, supervisor, events_worker
):
    purge_queues()
    endpoint_for(receiver)
    receiver.script = [Answer(500), Answer(500), Answer(500)]

    event = resolve_a_ticket(supervisor)

    assert events_worker.wait_for(lambda: len(receiver.receipts()) == 1, timeout=60), events_worker.output()
    time.sleep(1)  # anything more would come within the retry delay (0.3 s)
    assert len(receiver.received) == 4
    assert all(r.verified for r in receiver.received)
    assert {r.webhook_id for r in receiver.received} == {event.webhook_id}
    assert [r.answered for r in receiver.received] == [500, 500, 500, 200]
    assert len(receiver.receipts()) == 1
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.attempts) == (Delivery.Status.DELIVERED, 4)
    assert list(delivery.attempt_log.values_list("status_code", flat=True)) == [500, 500, 500, 200]


def test_a_worker_killed_mid_delivery_is_made_good_after_a_restart(
    receiver, endpoint_for, supervisor, tmp_path
):
    purge_queues()
    endpoint_for(receiver)
    receiver.script = [Answer(200, delay=120)]  # the first answer comes too late for anyone
    first = start_worker(tmp_path / "first.log", **WORKER_ENV)
    try:
        event = resolve_a_ticket(supervisor)
        assert first.wait_for(lambda: len(receiver.received) == 1, timeout=60), first.output()
        first.process.send_signal(signal.SIGKILL)  # while it waits for the answer
        first.process.wait(timeout=30)
    finally:
        if first.process.poll() is None:
            first.process.kill()
    delivery = Delivery.objects.get()
    assert delivery.status == Delivery.Status.PENDING
    assert delivery.locked_until is not None  # held by the dead worker's claim, until it runs out

    second = start_worker(tmp_path / "second.log", **WORKER_ENV)
    try:
        # The killed worker's message stays unacknowledged until the broker's visibility
        # timeout; the sweep (every minute in production) finds the delivery once its claim
        # has run out.
        swept = [delivery.locked_until]

        def swept_and_delivered() -> bool:
            if timezone.now() > swept[-1] + timedelta(seconds=2):
                services.events_sweep(now=timezone.now() + services.SWEEP_GRACE)
                swept.append(timezone.now())
            delivery.refresh_from_db()
            return delivery.status == Delivery.Status.DELIVERED

        assert second.wait_for(swept_and_delivered, timeout=90), second.output()
    finally:
        second.process.terminate()
        second.process.wait(timeout=30)

    assert {r.webhook_id for r in receiver.received} == {event.webhook_id}
    assert len(receiver.receipts()) == 1  # the first request never got its answer to the sender
    assert delivery.attempts == 2
    assert list(delivery.attempt_log.values_list("number", "status_code")) == [(2, 200)]

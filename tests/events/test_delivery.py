"""Delivery to a real local receiver that checks every signature with the reference
Standard Webhooks library; each attempt is made here, in the test, as a worker would."""

import json
import socket
from datetime import timedelta
from email.utils import format_datetime

import pytest
from django.core import mail
from django.db import transaction
from django.utils import timezone

from csai.errors import ApplicationError
from events import addresses, services
from events.models import Attempt, Delivery, Endpoint, Event, EventType
from tests.events.receiver import Answer
from tests.factories import TicketFactory
from tickets import services as ticket_services


def resolve_a_ticket() -> Event:
    """A real change: a ticket resolved by the AI, announced in its transaction."""
    with transaction.atomic():
        ticket_services.ticket_resolve(ticket=TicketFactory(), by_ai=True)
    return Event.objects.latest("id")


def fan_out(event: Event) -> Delivery:
    (delivery_id,) = services.event_fan_out(event_id=event.pk)
    return Delivery.objects.get(pk=delivery_id)


def attempt(delivery: Delivery) -> str:
    """One attempt, as the worker makes it; then the delivery as it is now."""
    outcome = services.delivery_attempt(delivery_id=delivery.pk)
    delivery.refresh_from_db()
    return outcome


def test_a_delivery_is_signed_as_standard_webhooks_says_and_carries_the_event(db, receiver, endpoint_for):
    endpoint_for(receiver)
    event = resolve_a_ticket()
    delivery = fan_out(event)

    assert attempt(delivery) == "delivered"

    (got,) = receiver.receipts()
    assert got.verified  # by the reference library, with the endpoint's whsec_ secret
    assert got.headers["webhook-id"] == event.webhook_id
    assert got.headers["webhook-signature"].startswith("v1,")
    assert got.headers["content-type"] == "application/json"
    body = got.event
    assert body["id"] == event.webhook_id
    assert body["type"] == "ticket.resolved"
    assert body["subject"] == {"kind": "ticket", "id": event.subject_id}
    assert body["sequence"] == 1
    assert body["data"]["resolved_by"] == {"kind": "ai"}
    assert delivery.status == Delivery.Status.DELIVERED
    assert delivery.last_status_code == 200
    assert delivery.response_excerpt == "ok"


def test_a_wrong_secret_does_not_verify(db, receiver, endpoint_for):
    endpoint_for(receiver)
    receiver.secret = "whsec_" + "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQQ=="  # someone else's
    attempt(fan_out(resolve_a_ticket()))

    assert [r.verified for r in receiver.received] == [False]


def test_failures_are_retried_with_the_same_webhook_id_until_a_2xx(db, receiver, endpoint_for):
    endpoint_for(receiver)
    receiver.script = [Answer(500), Answer(502), Answer(500)]
    delivery = fan_out(resolve_a_ticket())

    outcomes = [attempt(delivery) for _ in range(4)]

    assert outcomes == ["retrying", "retrying", "retrying", "delivered"]
    assert len({r.webhook_id for r in receiver.received}) == 1
    assert len(receiver.receipts()) == 1
    log = list(delivery.attempt_log.values_list("number", "status_code"))
    assert log == [(1, 500), (2, 502), (3, 500), (4, 200)]
    assert Endpoint.objects.get().failing_since is None  # a success ends the failing run


def test_a_delivered_event_is_never_sent_again(db, receiver, endpoint_for):
    endpoint_for(receiver)
    event = resolve_a_ticket()
    delivery = fan_out(event)
    attempt(delivery)

    assert attempt(delivery) == "already-delivered"
    assert services.event_replay(event=event) == 0
    assert services.deliveries_replay(deliveries=Delivery.objects.all()) == 0
    assert len(receiver.received) == 1


def test_a_second_fan_out_makes_no_second_delivery(db, receiver, endpoint_for):
    endpoint_for(receiver)
    event = resolve_a_ticket()
    fan_out(event)

    assert services.event_fan_out(event_id=event.pk) == list(Delivery.objects.values_list("pk", flat=True))
    assert Delivery.objects.count() == 1


def test_the_retries_run_out_and_the_delivery_fails(db, receiver, endpoint_for, settings):
    settings.CSAI_EVENT_RETRY_SCHEDULE = [0.0, 0.0]
    endpoint_for(receiver)
    receiver.script = [Answer(500)] * 3
    delivery = fan_out(resolve_a_ticket())

    assert [attempt(delivery) for _ in range(3)] == ["retrying", "retrying", "failed"]
    assert delivery.status == Delivery.Status.FAILED
    assert attempt(delivery) == "already-failed"
    assert len(receiver.received) == 3


def test_the_retry_waits_as_the_schedule_says_with_jitter(db, receiver, endpoint_for, settings):
    settings.CSAI_EVENT_RETRY_SCHEDULE = [300.0]
    endpoint_for(receiver)
    receiver.script = [Answer(500)]
    delivery = fan_out(resolve_a_ticket())
    before = timezone.now()

    attempt(delivery)

    wait = (delivery.next_attempt_at - before).total_seconds()
    assert 300 * 0.8 - 1 <= wait <= 300 * 1.2 + 1
    assert attempt(delivery) == "not-due"  # nothing is sent before its time
    assert len(receiver.received) == 1


@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_is_honoured_in_seconds(db, receiver, endpoint_for, settings, status):
    settings.CSAI_EVENT_RETRY_SCHEDULE = [5.0]
    endpoint_for(receiver)
    receiver.script = [Answer(status, {"Retry-After": "120"})]
    delivery = fan_out(resolve_a_ticket())
    before = timezone.now()

    assert attempt(delivery) == "retrying"

    assert 119 <= (delivery.next_attempt_at - before).total_seconds() <= 122


def test_retry_after_as_a_date_is_honoured(db, receiver, endpoint_for):
    endpoint_for(receiver)
    at = timezone.now() + timedelta(hours=1)
    receiver.script = [Answer(503, {"Retry-After": format_datetime(at, usegmt=True)})]
    delivery = fan_out(resolve_a_ticket())

    attempt(delivery)

    assert abs((delivery.next_attempt_at - at).total_seconds()) <= 2


def test_410_gone_disables_the_endpoint_and_tells_the_supervisors(db, receiver, endpoint_for, supervisor):
    endpoint = endpoint_for(receiver)
    receiver.script = [Answer(410)]
    first = fan_out(resolve_a_ticket())
    second = fan_out(resolve_a_ticket())

    assert attempt(first) == "failed"

    endpoint.refresh_from_db()
    assert not endpoint.active
    assert "410" in endpoint.disabled_reason
    second.refresh_from_db()
    assert second.status == Delivery.Status.FAILED  # nothing more goes to it
    assert attempt(second) == "already-failed"
    assert len(receiver.received) == 1
    (message,) = mail.outbox
    assert message.to == [supervisor.email]
    assert endpoint.url in message.subject


def test_an_endpoint_failing_for_five_days_is_disabled(db, receiver, endpoint_for, supervisor):
    endpoint = endpoint_for(receiver)
    Endpoint.objects.filter(pk=endpoint.pk).update(
        failing_since=timezone.now() - timedelta(days=5, minutes=1)
    )
    receiver.script = [Answer(500)]

    attempt(fan_out(resolve_a_ticket()))

    endpoint.refresh_from_db()
    assert not endpoint.active
    assert "5 days" in endpoint.disabled_reason
    assert len(mail.outbox) == 1


def test_a_failing_endpoint_is_not_disabled_before_five_days(db, receiver, endpoint_for):
    endpoint = endpoint_for(receiver)
    Endpoint.objects.filter(pk=endpoint.pk).update(failing_since=timezone.now() - timedelta(days=4))
    receiver.script = [Answer(500)]

    attempt(fan_out(resolve_a_ticket()))

    endpoint.refresh_from_db()
    assert endpoint.active


def test_no_answer_within_the_timeout_is_a_failure(db, receiver, endpoint_for, settings):
    settings.CSAI_EVENT_TIMEOUT_SECONDS = 1
    endpoint_for(receiver)
    receiver.script = [Answer(200, delay=2.5)]
    delivery = fan_out(resolve_a_ticket())

    assert attempt(delivery) == "retrying"
    assert delivery.last_status_code is None
    assert "no answer within 1 s" in delivery.last_error


def test_a_redirect_is_not_followed(db, receiver, endpoint_for):
    endpoint_for(receiver)
    receiver.script = [Answer(301, {"Location": "http://169.254.169.254/latest/meta-data/"})]
    delivery = fan_out(resolve_a_ticket())

    assert attempt(delivery) == "retrying"
    assert delivery.last_status_code == 301
    assert len(receiver.received) == 1


def test_every_attempt_is_logged_with_status_duration_and_a_short_excerpt(db, receiver, endpoint_for):
    endpoint_for(receiver)
    receiver.script = [Answer(500)]
    delivery = fan_out(resolve_a_ticket())
    attempt(delivery)
    attempt(delivery)

    log = list(Attempt.objects.filter(delivery=delivery))
    assert [(a.number, a.status_code, a.response_excerpt) for a in log] == [(1, 500, "ok"), (2, 200, "ok")]
    assert all(a.duration_ms >= 0 and a.attempted_at for a in log)


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:9/hooks", "http://10.1.2.3/hooks", "http://[::1]/hooks", "http://localhost/x",
     "http://169.254.169.254/latest", "http://[::ffff:192.168.0.1]/x"],
)  # fmt: skip
def test_private_and_loopback_addresses_are_refused(db, settings, url):
    settings.CSAI_WEBHOOK_ALLOW_PRIVATE = False

    with pytest.raises(ApplicationError, match="cannot go to this URL"):
        services.endpoint_create(url=url)


def test_a_name_that_resolves_to_a_private_address_is_refused_when_sending(db, settings, monkeypatch):
    settings.CSAI_WEBHOOK_ALLOW_PRIVATE = False
    services.endpoint_create(url="http://hooks.example.test/in")  # a name: checked when sending
    delivery = fan_out(resolve_a_ticket())
    answers = [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.7", 80))]
    monkeypatch.setattr(addresses.socket, "getaddrinfo", lambda *args, **kwargs: answers)  # the DNS

    assert attempt(delivery) == "failed"  # permanent: no retry
    assert delivery.last_error == "refused: hooks.example.test resolves to 10.0.0.7, not a public address."


def test_an_endpoint_gets_only_the_types_it_subscribes_to(db, receiver, endpoint_for):
    endpoint_for(receiver, event_types=[EventType.TICKET_CREATED])
    event = resolve_a_ticket()

    assert services.event_fan_out(event_id=event.pk) == []
    assert not Delivery.objects.exists()


def test_an_endpoint_gets_the_events_written_after_it_was_added(db, receiver, endpoint_for):
    earlier = resolve_a_ticket()
    endpoint_for(receiver)

    assert services.event_fan_out(event_id=earlier.pk) == []


def test_the_sweep_finds_events_not_fanned_out_and_deliveries_due(db, receiver, endpoint_for, monkeypatch):
    queued = []
    monkeypatch.setattr(services, "_enqueue_fan_out", lambda event_id: queued.append(("fan-out", event_id)))
    monkeypatch.setattr(
        services, "_enqueue_send", lambda delivery_id, countdown=0: queued.append(("send", delivery_id))
    )
    endpoint_for(receiver)
    lost = resolve_a_ticket()
    due = fan_out(resolve_a_ticket())
    later = timezone.now() + services.SWEEP_GRACE + timedelta(seconds=1)

    assert services.events_sweep(now=timezone.now()) == (0, 0)  # their own tasks may still come
    assert services.events_sweep(now=later) == (1, 1)
    assert queued == [("fan-out", lost.pk), ("send", due.pk)]


def test_replaying_the_failed_deliveries_since_a_time_sends_them_again(db, receiver, endpoint_for, settings):
    settings.CSAI_EVENT_RETRY_SCHEDULE = []
    endpoint = endpoint_for(receiver)
    receiver.script = [Answer(500), Answer(500)]
    old, new = fan_out(resolve_a_ticket()), fan_out(resolve_a_ticket())
    Delivery.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=2))
    attempt(old), attempt(new)
    assert {old.status, new.status} == {Delivery.Status.FAILED}

    assert services.deliveries_replay_failed(since=timezone.now() - timedelta(days=1), endpoint=endpoint) == 1

    assert attempt(new) == "delivered"
    assert attempt(old) == "already-failed"
    assert [r.webhook_id for r in receiver.received][1:] == [receiver.received[1].webhook_id] * 2
    assert list(new.attempt_log.values_list("number", "status_code")) == [(1, 500), (2, 200)]


def test_replaying_an_event_reaches_an_endpoint_added_since(db, receiver, endpoint_for):
    event = resolve_a_ticket()
    endpoint_for(receiver)

    assert services.event_replay(event=event) == 1
    attempt(Delivery.objects.get())

    assert [r.webhook_id for r in receiver.receipts()] == [event.webhook_id]


def test_turning_an_endpoint_off_fails_what_waits_and_a_replay_needs_it_on(db, receiver, endpoint_for):
    endpoint = endpoint_for(receiver)
    delivery = fan_out(resolve_a_ticket())

    services.endpoint_update(endpoint=endpoint, active=False)

    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.FAILED
    with pytest.raises(ApplicationError, match="disabled"):
        services.deliveries_replay_failed(since=timezone.now() - timedelta(hours=1), endpoint=endpoint)
    services.endpoint_update(endpoint=endpoint, active=True)
    assert (
        services.deliveries_replay_failed(since=timezone.now() - timedelta(hours=1), endpoint=endpoint) == 1
    )
    assert attempt(delivery) == "delivered"


def test_the_body_is_the_same_bytes_on_every_attempt(db, receiver, endpoint_for):
    endpoint_for(receiver)
    receiver.script = [Answer(500)]
    delivery = fan_out(resolve_a_ticket())
    attempt(delivery), attempt(delivery)

    first, second = receiver.received
    assert first.body == second.body
    assert json.loads(first.body)["timestamp"] == json.loads(second.body)["timestamp"]

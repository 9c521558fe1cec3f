import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from django.db import connections
from django.test import Client

from tests.conftest import WEBHOOK_SECRET, WEBHOOK_URL, signed_post, ticket_payload
from tickets import signals, webhooks
from tickets.models import Customer, Message, SLAPolicy, Ticket

pytestmark = pytest.mark.django_db


def nested(depth: int) -> dict:
    value: dict = {}
    for _ in range(depth):
        value = {"x": value}
    return value


def assert_nothing_stored():
    assert (Ticket.objects.count(), Customer.objects.count(), Message.objects.count()) == (0, 0, 0)


def test_it_creates_the_ticket_customer_and_first_message(client):
    response = signed_post(client, ticket_payload())

    assert response.status_code == 201
    ticket = Ticket.objects.get(pk=response.json()["ticket_id"])
    assert response.json() == {"ticket_id": ticket.pk, "status": "new"}
    assert (ticket.source, ticket.external_id, ticket.channel) == ("zendesk", "ZD-1001", "email")
    assert ticket.stage == Ticket.Stage.TRIGGER
    assert ticket.customer.name == "Dana Whitfield" and ticket.customer.tier == "PREMIUM"
    assert ticket.correlation_id == response["X-Correlation-ID"]
    (message,) = ticket.messages.all()
    assert (message.kind, message.sender_kind) == ("external", "customer")
    assert "ERR_PAYMENT_402" in message.content


def test_it_sets_sla_deadlines_from_the_policy_for_the_customer_tier(client):
    policy = SLAPolicy.objects.get(priority="MEDIUM", tier="PREMIUM")
    policy.first_response_minutes, policy.resolution_minutes = 30, 600
    policy.save(update_fields=["first_response_minutes", "resolution_minutes"])

    signed_post(client, ticket_payload())

    ticket = Ticket.objects.get()
    assert ticket.first_response_due - ticket.created_at == timedelta(minutes=30)
    assert ticket.resolution_due - ticket.created_at == timedelta(minutes=600)
    assert ticket.sla_state == Ticket.SLAState.ON_TIME


def test_a_repeated_delivery_answers_200_with_the_same_ticket(client):
    first = signed_post(client, ticket_payload())
    again = signed_post(client, ticket_payload(subject="edited subject on retry"))

    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["ticket_id"] == first.json()["ticket_id"]
    assert Ticket.objects.get().subject == "Card payment declined at checkout"
    assert Message.objects.count() == 1


def test_the_same_external_id_from_another_source_is_another_ticket(client):
    signed_post(client, ticket_payload())
    response = signed_post(client, ticket_payload(source="email-gateway"))

    assert response.status_code == 201
    assert Ticket.objects.count() == 2
    assert Customer.objects.count() == 1


def test_the_processing_task_is_enqueued_only_after_commit(client, django_capture_on_commit_callbacks):
    received = []

    def receiver(sender, ticket_id, **_):
        received.append(ticket_id)

    signals.ticket_received.connect(receiver)
    try:
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            response = signed_post(client, ticket_payload())
        assert received == []  # nothing leaves before the transaction commits
        for callback in callbacks:
            callback()
    finally:
        signals.ticket_received.disconnect(receiver)
    assert received == [response.json()["ticket_id"]]


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda p: p.update(subject="x" * 301), "subject"),
        (lambda p: p.update(body="   "), "body"),
        (lambda p: p.update(channel="carrier-pigeon"), "channel"),
        (lambda p: p.update(source="bad source!"), "source"),
        (lambda p: p["customer"].update(tier="GOLD"), "customer"),
        (lambda p: p["customer"].update(email="not-an-email"), "customer"),
        (lambda p: p.pop("customer"), "customer"),
        (lambda p: p.update(metadata=["not", "an", "object"]), "metadata"),
        (lambda p: p.update(metadata={"note": "a\x00b"}), "metadata"),
        (lambda p: p.update(metadata={"a\x00": 1}), "metadata"),
        (lambda p: p.update(metadata={"note": "half an emoji \ud83d"}), "metadata"),
        (lambda p: p.update(metadata={"\udc00": 1}), "metadata"),
        (lambda p: p.update(metadata=nested(40)), "metadata"),
        (lambda p: p.update(external_id="x" * 129), "external_id"),
    ],
)
def test_invalid_fields_get_400_naming_the_field_and_store_nothing(client, mutate, field):
    payload = ticket_payload()
    mutate(payload)

    response = signed_post(client, payload)

    assert response.status_code == 400
    assert field in response.json()
    assert isinstance(response.json()[field], list | dict)
    assert_nothing_stored()


@pytest.mark.parametrize(
    "raw",
    [
        b"{not json",
        b"[1, 2]",
        b'"a string"',
        '{"subject": "caf\xe9"}'.encode("latin-1"),
        b'{"metadata": {"ratio": NaN}}',
        b'{"metadata": {"limit": -Infinity}}',
        b'{"metadata": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
    ],
)
def test_malformed_json_gets_400_and_stores_nothing(client, raw):
    response = signed_post(client, raw)

    assert response.status_code == 400
    assert "non_field_errors" in response.json()
    assert_nothing_stored()


@pytest.mark.parametrize(
    "signature",
    [
        None,
        "",
        "v1=deadbeef",
        "t=notanumber,v1=00",
        "t=1700000000,v1=" + "0" * 64,
    ],
)
def test_missing_or_malformed_signature_gets_401(client, signature):
    raw = json.dumps(ticket_payload()).encode()
    headers = {} if signature is None else {"HTTP_X_CSAI_SIGNATURE": signature}
    if signature is None:
        response = client.post(WEBHOOK_URL, raw, content_type="application/json")
    else:
        response = client.post(WEBHOOK_URL, raw, content_type="application/json", **headers)

    assert response.status_code == 401
    assert_nothing_stored()


def test_a_signature_made_with_another_secret_gets_401(client):
    response = signed_post(client, ticket_payload(), secret="someone-else")

    assert response.status_code == 401
    assert_nothing_stored()


def test_a_body_changed_after_signing_gets_401(client):
    raw = json.dumps(ticket_payload()).encode()
    signature = webhooks.sign(secret=WEBHOOK_SECRET, body=raw)
    tampered = raw.replace(b"PREMIUM", b"BASIC")

    response = client.post(
        WEBHOOK_URL, tampered, content_type="application/json", HTTP_X_CSAI_SIGNATURE=signature
    )

    assert response.status_code == 401
    assert_nothing_stored()


@pytest.mark.parametrize("age_seconds", [301, 3600, -301])
def test_a_replayed_or_future_timestamp_gets_401(client, age_seconds):
    response = signed_post(client, ticket_payload(), timestamp=int(time.time()) - age_seconds)

    assert response.status_code == 401
    assert "window" in response.json()["detail"]
    assert_nothing_stored()


def test_a_body_over_256_kib_gets_413(client):
    payload = ticket_payload(body="x" * (256 * 1024))

    response = signed_post(client, payload)

    assert response.status_code == 413
    assert_nothing_stored()


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "application/xml"]
)
def test_a_body_that_is_not_json_gets_415(client, content_type):
    response = signed_post(client, ticket_payload(), content_type=content_type)

    assert response.status_code == 415
    assert_nothing_stored()


def test_json_with_a_charset_is_accepted(client):
    response = signed_post(client, ticket_payload(), content_type="application/json; charset=utf-8")

    assert response.status_code == 201


def test_too_many_deliveries_get_429_with_retry_after(client, settings):
    settings.CSAI_WEBHOOK_RATE = (3, 60)
    statuses = [signed_post(client, ticket_payload(external_id=f"ZD-{n}")).status_code for n in range(4)]

    assert statuses == [201, 201, 201, 429]
    assert Ticket.objects.count() == 3
    assert 0 < int(signed_post(client, ticket_payload(external_id="ZD-5"))["Retry-After"]) <= 60


def test_the_throttle_counts_each_client_address_apart(client, settings):
    settings.CSAI_WEBHOOK_RATE = (1, 60)

    first = signed_post(client, ticket_payload(external_id="A"), REMOTE_ADDR="10.0.0.1")
    second = signed_post(client, ticket_payload(external_id="B"), REMOTE_ADDR="10.0.0.2")

    assert (first.status_code, second.status_code) == (201, 201)


def test_other_methods_get_405(client):
    assert client.get(WEBHOOK_URL).status_code == 405
    assert client.put(WEBHOOK_URL, "{}", content_type="application/json").status_code == 405


@pytest.mark.django_db(transaction=True)
def test_50_concurrent_identical_deliveries_create_exactly_one_ticket():
    """50 threads, each with its own database connection, deliver the same ticket at once."""
    raw = json.dumps(ticket_payload()).encode()
    start = threading.Barrier(50)

    def deliver(_):
        try:
            start.wait()
            response = signed_post(Client(), raw)
            return response.status_code, response.json()["ticket_id"]
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=50) as pool:
        results = list(pool.map(deliver, range(50)))

    statuses = sorted(status for status, _ in results)
    assert statuses == [200] * 49 + [201]
    assert len({ticket_id for _, ticket_id in results}) == 1
    assert Ticket.objects.count() == 1
    assert Message.objects.count() == 1
    assert Customer.objects.count() == 1


def test_a_later_delivery_updates_the_customer_but_never_erases_what_it_left_out(client):
    signed_post(client, ticket_payload())
    later = ticket_payload(external_id="ZD-1002")
    later["customer"] = {"external_id": "ACME-17", "name": "Dana Whitfield-Ross"}

    response = signed_post(client, later)

    customer = Customer.objects.get()
    assert (customer.name, customer.email, customer.company, customer.tier) == (
        "Dana Whitfield-Ross",
        "dana@acme.example",
        "Acme Corp",
        "PREMIUM",
    )
    # The SLA of the new ticket follows the stored PREMIUM tier, not a default.
    ticket = Ticket.objects.get(pk=response.json()["ticket_id"])
    premium = SLAPolicy.objects.get(priority="MEDIUM", tier="PREMIUM")
    assert ticket.first_response_due - ticket.created_at == timedelta(minutes=premium.first_response_minutes)


def test_a_new_customer_without_a_tier_is_standard(client):
    payload = ticket_payload()
    del payload["customer"]["tier"]

    signed_post(client, payload)

    assert Customer.objects.get().tier == "STANDARD"


@pytest.mark.parametrize(
    ("declared", "status"), [("not-a-number", 400), ("-5", 400), ("²", 400), (str(10**9), 413)]
)
def test_a_false_content_length_gets_a_4xx_not_a_crash(client, declared, status):
    response = signed_post(client, ticket_payload(), CONTENT_LENGTH=declared)

    assert response.status_code == status
    assert_nothing_stored()


@pytest.mark.parametrize(
    ("subject", "body", "stored"),
    [
        ("", "My invoice is wrong.\nIt shows 40 EUR twice.", "My invoice is wrong."),
        (None, "\n\n  Login   fails\tsince Monday  \n", "Login fails since Monday"),
        ("   ", "word " * 40, "word " * 15 + "word…"),
        ("", "x" * 200, "x" * 79 + "…"),
    ],
)
def test_a_ticket_without_a_subject_gets_one_from_its_body(client, subject, body, stored):
    response = signed_post(client, ticket_payload(subject=subject, body=body))

    assert response.status_code == 201, response.content
    ticket = Ticket.objects.get()
    assert ticket.subject == stored
    assert ticket.body == body


def test_a_delivery_without_the_subject_field_is_accepted(client):
    payload = ticket_payload()
    del payload["subject"]

    response = signed_post(client, payload)

    assert response.status_code == 201
    assert Ticket.objects.get().subject == "Hi, my card keeps getting declined with ERR_PAYMENT_402 on order…"

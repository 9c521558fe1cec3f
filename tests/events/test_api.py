"""Webhook endpoints over REST: supervisors and admins manage them, read their deliveries
and replay; reviewers may not (tests/access.py has every route's gate)."""

from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from events import services
from events.models import Delivery, Endpoint, Event
from tests.conftest import token_client
from tests.events.receiver import Answer
from tests.factories import TicketFactory, UserFactory
from tickets import roles
from tickets import services as ticket_services

URL = "/api/v1/webhook-endpoints/"


@pytest.fixture
def api(supervisor):
    return token_client(supervisor)


def test_a_supervisor_adds_an_endpoint_and_sees_its_secret_once(api):
    created = api.post(
        URL, {"url": "https://hooks.example.com/csai", "event_types": ["ticket.resolved"]}, format="json"
    )

    assert created.status_code == 201, created.json()
    body = created.json()
    assert body["secret"].startswith("whsec_")
    assert body["event_types"] == ["ticket.resolved"]
    assert body["active"] is True
    listed = api.get(URL).json()
    assert [e["url"] for e in listed] == ["https://hooks.example.com/csai"]
    assert "secret" not in listed[0]
    assert "secret" not in api.get(f"{URL}{body['id']}/").json()


def test_an_admin_manages_endpoints_too(db):
    admin = UserFactory(username="admin-user", groups=[roles.ADMIN])

    assert token_client(admin).get(URL).status_code == 200


def test_a_reviewer_may_not(reviewer):
    assert (
        token_client(reviewer).post(URL, {"url": "https://a.example.com"}, format="json").status_code == 403
    )


@pytest.mark.parametrize(
    "body",
    [
        {"url": "http://127.0.0.1:8080/x"},
        {"url": "ftp://hooks.example.com/x"},
        {"url": "https://hooks.example.com", "event_types": ["ticket.exploded"]},
    ],
    ids=["loopback", "not-http", "unknown-type"],
)
def test_a_refused_endpoint_is_a_400_and_nothing_is_stored(api, settings, body):
    settings.CSAI_WEBHOOK_ALLOW_PRIVATE = False
    answer = api.post(URL, body, format="json")

    assert answer.status_code == 400
    assert not Endpoint.objects.exists()


def test_a_private_address_is_allowed_when_the_setting_says_so(api, settings):
    settings.CSAI_WEBHOOK_ALLOW_PRIVATE = True

    assert api.post(URL, {"url": "http://127.0.0.1:8080/x"}, format="json").status_code == 201


def test_an_endpoint_is_edited_turned_off_and_on_and_deleted(api):
    endpoint = services.endpoint_create(url="https://hooks.example.com/a")
    Endpoint.objects.filter(pk=endpoint.pk).update(
        active=False, disabled_reason="The receiver answered 410 Gone.", failing_since=timezone.now()
    )

    changed = api.patch(
        f"{URL}{endpoint.pk}/", {"url": "https://hooks.example.com/b", "active": True}, format="json"
    ).json()

    assert changed["url"] == "https://hooks.example.com/b"
    assert (changed["active"], changed["disabled_reason"], changed["failing_since"]) == (True, "", None)
    assert api.delete(f"{URL}{endpoint.pk}/").status_code == 204
    assert not Endpoint.objects.exists()


def _deliveries(endpoint, count: int) -> None:
    for _ in range(count):
        with transaction.atomic():
            ticket_services.ticket_resolve(ticket=TicketFactory(), by_ai=True)
        services.event_fan_out(event_id=Event.objects.latest("id").pk)


def test_an_endpoints_deliveries_are_listed_with_every_attempt_in_few_queries(
    db, api, receiver, endpoint_for
):
    endpoint = endpoint_for(receiver)
    receiver.script = [Answer(500)]
    _deliveries(endpoint, 3)
    for delivery in Delivery.objects.all():
        services.delivery_attempt(delivery_id=delivery.pk)
    retried = Delivery.objects.get(status="pending")
    services.delivery_attempt(delivery_id=retried.pk)

    with CaptureQueriesContext(connection) as three:
        listed = api.get(f"{URL}{endpoint.pk}/deliveries/").json()["results"]
    _deliveries(endpoint, 5)
    with CaptureQueriesContext(connection) as eight:
        api.get(f"{URL}{endpoint.pk}/deliveries/")

    assert len(eight) == len(three)  # no query per delivery
    (shown,) = [d for d in listed if d["id"] == retried.pk]
    assert shown["status"] == "delivered"
    assert [a["status_code"] for a in shown["attempt_log"]] == [500, 200]
    assert shown["webhook_id"].startswith("evt_")
    assert shown["event_type"] == "ticket.resolved"
    assert len(api.get(f"{URL}{endpoint.pk}/deliveries/?status=delivered").json()["results"]) == 3


def test_replay_of_an_endpoints_failed_deliveries_since_a_time(db, api, receiver, endpoint_for, settings):
    settings.CSAI_EVENT_RETRY_SCHEDULE = []
    endpoint = endpoint_for(receiver)
    receiver.script = [Answer(500), Answer(500)]
    _deliveries(endpoint, 2)
    for delivery in Delivery.objects.all():
        services.delivery_attempt(delivery_id=delivery.pk)
    since = (timezone.now() - timedelta(hours=1)).isoformat()

    answer = api.post(f"{URL}{endpoint.pk}/replay/", {"since": since}, format="json")

    assert answer.status_code == 200
    assert answer.json() == {"replayed": 2}
    assert set(Delivery.objects.values_list("status", flat=True)) == {"pending"}


def test_replay_on_a_disabled_endpoint_is_a_409(api):
    endpoint = services.endpoint_create(url="https://hooks.example.com/a")
    services.endpoint_update(endpoint=endpoint, active=False)

    answer = api.post(f"{URL}{endpoint.pk}/replay/", {"since": timezone.now().isoformat()}, format="json")

    assert answer.status_code == 409


def test_replay_of_one_event_by_its_webhook_id(db, api, receiver, endpoint_for):
    endpoint_for(receiver)
    with transaction.atomic():
        ticket_services.ticket_resolve(ticket=TicketFactory(), by_ai=True)
    event = Event.objects.get()

    answer = api.post(f"/api/v1/events/{event.webhook_id}/replay/")

    assert answer.json() == {"replayed": 1}
    assert api.post("/api/v1/events/evt_0123/replay/").status_code == 404

"""Endpoints, events and deliveries in the admin: supervisors add endpoints, read every
attempt and replay; reviewers see none of it."""

from datetime import timedelta

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.db import transaction
from django.utils import timezone

from events import services
from events.models import Delivery, Endpoint, Event
from tests.events.receiver import Answer
from tests.factories import TicketFactory
from tickets import services as ticket_services


@pytest.fixture
def staff(client, supervisor):
    supervisor.is_staff = True
    supervisor.save(update_fields=["is_staff"])
    client.force_login(supervisor)
    return client


def failed_delivery(receiver, settings) -> Delivery:
    settings.CSAI_EVENT_RETRY_SCHEDULE = []
    receiver.script = [Answer(500)]
    with transaction.atomic():
        ticket_services.ticket_resolve(ticket=TicketFactory(), by_ai=True)
    (delivery_id,) = services.event_fan_out(event_id=Event.objects.latest("id").pk)
    services.delivery_attempt(delivery_id=delivery_id)
    return Delivery.objects.get(pk=delivery_id, status=Delivery.Status.FAILED)


def test_a_supervisor_adds_an_endpoint_and_it_gets_a_secret(staff):
    answer = staff.post(
        "/admin/events/endpoint/add/",
        {"url": "https://hooks.example.com/in", "description": "CRM", "event_types": ["ticket.resolved"]},
    )

    assert answer.status_code == 302, answer.content.decode()[:2000]
    endpoint = Endpoint.objects.get()
    assert endpoint.secret.startswith("whsec_")
    assert endpoint.event_types == ["ticket.resolved"]


def test_the_admin_refuses_a_private_address(staff, settings):
    settings.CSAI_WEBHOOK_ALLOW_PRIVATE = False

    answer = staff.post("/admin/events/endpoint/add/", {"url": "http://10.0.0.5/in"})

    assert "not a public address" in answer.content.decode()
    assert not Endpoint.objects.exists()


def test_every_page_shows_and_a_delivery_shows_its_attempts(staff, receiver, endpoint_for, settings):
    endpoint = endpoint_for(receiver)
    delivery = failed_delivery(receiver, settings)

    for page in (
        "endpoint/",
        f"endpoint/{endpoint.pk}/change/",
        "event/",
        f"event/{delivery.event_id}/change/",
    ):
        assert staff.get(f"/admin/events/{page}").status_code == 200, page
    assert staff.get("/admin/events/delivery/?status__exact=failed").status_code == 200
    page = staff.get(f"/admin/events/delivery/{delivery.pk}/change/").content.decode()
    assert "500" in page and "ok" in page


def test_replaying_an_endpoints_failed_deliveries_since_a_time(staff, receiver, endpoint_for, settings):
    endpoint = endpoint_for(receiver)
    delivery = failed_delivery(receiver, settings)
    selected = {"action": "replay_failed", ACTION_CHECKBOX_NAME: [endpoint.pk]}

    form = staff.post("/admin/events/endpoint/", selected)
    assert 'name="since"' in form.content.decode()
    since = (timezone.now() - timedelta(hours=1)).strftime("%Y-%m-%d %H:%M:%S")
    done = staff.post("/admin/events/endpoint/", {**selected, "apply": "1", "since": since})

    assert done.status_code == 302
    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.PENDING
    assert services.delivery_attempt(delivery_id=delivery.pk) == "delivered"


def test_replaying_selected_events(staff, receiver, endpoint_for, settings):
    endpoint_for(receiver)
    delivery = failed_delivery(receiver, settings)

    staff.post("/admin/events/event/", {"action": "replay", ACTION_CHECKBOX_NAME: [delivery.event_id]})

    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.PENDING


def test_a_reviewer_sees_no_endpoint(client, reviewer):
    reviewer.is_staff = True
    reviewer.save(update_fields=["is_staff"])
    client.force_login(reviewer)

    assert client.get("/admin/events/endpoint/").status_code == 403

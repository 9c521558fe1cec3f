from datetime import timedelta

import pytest
from django.utils import timezone

from tests.factories import TicketFactory
from tickets import services
from tickets.models import SLAPolicy, Ticket

pytestmark = pytest.mark.django_db


def test_every_priority_and_tier_has_a_default_policy():
    assert SLAPolicy.objects.count() == 12
    critical = SLAPolicy.objects.get(priority="CRITICAL", tier="PREMIUM")
    low = SLAPolicy.objects.get(priority="LOW", tier="BASIC")
    assert critical.first_response_minutes < low.first_response_minutes


def test_deadlines_come_from_the_matching_policy():
    start = timezone.now()
    first, resolution = services.sla_deadlines(priority="HIGH", tier="STANDARD", start=start)

    assert (first - start, resolution - start) == (timedelta(hours=2), timedelta(days=1))


def test_deadlines_fall_back_when_a_policy_was_deleted():
    SLAPolicy.objects.filter(priority="LOW", tier="BASIC").delete()
    start = timezone.now()

    first, resolution = services.sla_deadlines(priority="LOW", tier="BASIC", start=start)

    assert first - start == timedelta(minutes=services.FALLBACK_SLA_MINUTES[0])
    assert resolution > first


def make_ticket(created_ago: timedelta, first_window: timedelta, resolution_window: timedelta, **fields):
    created = timezone.now() - created_ago
    return TicketFactory(
        created_at=created,
        first_response_due=created + first_window,
        resolution_due=created + resolution_window,
        **fields,
    )


def state(ticket: Ticket) -> str:
    ticket.refresh_from_db(fields=["sla_state"])
    return ticket.sla_state


def test_sla_state_moves_from_on_time_to_at_risk_to_breached():
    hour, day = timedelta(hours=1), timedelta(days=1)
    fresh = make_ticket(timedelta(minutes=5), hour, day)
    close_to_first_response = make_ticket(timedelta(minutes=50), hour, day)
    past_first_response = make_ticket(timedelta(minutes=61), hour, day)

    changed = services.sla_refresh()

    assert changed == 2
    assert state(fresh) == "on_time"
    assert state(close_to_first_response) == "at_risk"
    assert state(past_first_response) == "breached"


def test_after_the_first_response_only_the_resolution_deadline_counts():
    hour, day = timedelta(hours=1), timedelta(days=1)
    answered = make_ticket(timedelta(hours=2), hour, day, first_response_at=timezone.now())
    almost_overdue = make_ticket(timedelta(hours=20), hour, day, first_response_at=timezone.now())

    services.sla_refresh()

    assert state(answered) == "on_time"
    assert state(almost_overdue) == "at_risk"


def test_resolved_tickets_keep_their_final_state():
    resolved = make_ticket(
        timedelta(days=3),
        timedelta(hours=1),
        timedelta(days=1),
        resolved_at=timezone.now() - timedelta(days=2, hours=12),
    )

    assert services.sla_refresh() == 0
    assert state(resolved) == "on_time"


def test_a_refresh_with_nothing_new_changes_nothing():
    make_ticket(timedelta(minutes=50), timedelta(hours=1), timedelta(days=1))

    assert services.sla_refresh() == 1
    assert services.sla_refresh() == 0

import pytest

from tests.factories import TicketFactory
from tickets import signals, tasks
from tickets.models import Ticket

pytestmark = pytest.mark.django_db


@pytest.fixture
def triage_requests():
    received = []

    def receiver(sender, ticket_id, **_):
        received.append(ticket_id)

    signals.ticket_ready_for_triage.connect(receiver)
    yield received
    signals.ticket_ready_for_triage.disconnect(receiver)


def test_intake_moves_a_new_ticket_into_triage_once_even_if_run_twice(triage_requests):
    ticket = TicketFactory()

    assert tasks.ticket_intake(ticket.pk) == "triaged"
    assert tasks.ticket_intake(ticket.pk) == "already-triaged"

    ticket.refresh_from_db()
    assert ticket.stage == Ticket.Stage.CLASSIFIER
    assert triage_requests == [ticket.pk]


def test_intake_of_a_ticket_that_does_not_exist_does_nothing(triage_requests):
    assert tasks.ticket_intake(987654) == "missing"
    assert triage_requests == []


def test_the_sla_task_reports_how_many_tickets_changed():
    assert tasks.sla_refresh() == "sla-updated:0"

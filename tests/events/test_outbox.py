"""Each change an integrator cares about writes its event in the change's own transaction:
the change and its announcement commit together or not at all, numbered per ticket."""

import pytest
from django.db import transaction
from django.utils import timezone

from autonomy.models import Alert, AutomationPolicy
from autonomy.services import monitor, transitions
from events import services
from events.models import Event, EventType
from review import services as review_services
from tests.autonomy.test_controller import decision, policy, submit
from tests.conftest import MESSAGES_URL, signed_post, ticket_payload
from tests.factories import TicketFactory
from tickets import services as ticket_services
from tickets.models import Message, Ticket


def events_of(ticket) -> list[tuple[str, int]]:
    rows = Event.objects.filter(subject_kind="ticket", subject_id=str(ticket.pk)).order_by("sequence")
    return [(event.type, event.sequence) for event in rows]


def test_it_announces_a_ticket_from_the_webhook_with_its_ids(db, client):
    ticket_id = signed_post(client, ticket_payload()).json()["ticket_id"]

    event = Event.objects.get()
    assert (event.type, event.subject_kind, event.subject_id, event.sequence) == (
        EventType.TICKET_CREATED, "ticket", str(ticket_id), 1
    )  # fmt: skip
    assert event.payload["ticket_id"] == ticket_id
    assert event.payload["external_id"] == "ZD-1001"
    assert event.payload["customer"] == {"external_id": "ACME-17", "tier": "PREMIUM"}
    assert event.payload["status"] == "new"
    assert event.payload["created_at"].endswith("Z")


def test_a_repeated_delivery_announces_nothing_new(db, client):
    signed_post(client, ticket_payload())
    signed_post(client, ticket_payload())

    assert Event.objects.count() == 1


def test_a_tickets_life_is_numbered_in_order(db, supervisor):
    ticket = TicketFactory()
    with transaction.atomic():
        ticket_services.ticket_triage_set(ticket=ticket, category="BILLING_INQUIRY", priority="HIGH")
    ticket_services.message_post(
        ticket=ticket, kind=Message.Kind.EXTERNAL, sender_kind=Message.SenderKind.AI_AGENT,
        sender_id="csai-agents", content="We are on it.",
    )  # fmt: skip
    ticket_services.message_post(
        ticket=ticket, kind=Message.Kind.INTERNAL, sender_kind=Message.SenderKind.AI_AGENT,
        sender_id="csai-agents", content="A note nobody outside sees.",
    )  # fmt: skip
    ticket_services.ticket_escalate(ticket=ticket, team="billing", note="To billing.", sender_id="x")
    review_services.ticket_reassign_by(ticket=ticket, user=supervisor, team="billing", assignee=supervisor)
    review_services.ticket_resolve_by(ticket=ticket, user=supervisor)
    review_services.ticket_reopen_by(ticket=Ticket.objects.get(pk=ticket.pk), user=supervisor)

    assert events_of(ticket) == [
        (EventType.TICKET_TRIAGED, 1),
        (EventType.TICKET_MESSAGE_CREATED, 2),
        (EventType.TICKET_ESCALATED, 3),
        (EventType.TICKET_ASSIGNED, 4),
        (EventType.TICKET_RESOLVED, 5),
        (EventType.TICKET_REOPENED, 6),
    ]
    payloads = {e.type: e.payload for e in Event.objects.all()}
    assert payloads[EventType.TICKET_TRIAGED]["changed"] == ["category", "priority"]
    assert payloads[EventType.TICKET_MESSAGE_CREATED]["message"]["content"] == "We are on it."
    assert payloads[EventType.TICKET_MESSAGE_CREATED]["message"]["sender_kind"] == "ai_agent"
    assert payloads[EventType.TICKET_MESSAGE_CREATED]["message"]["delivery"] == "queued"  # an email ticket
    assert payloads[EventType.TICKET_ESCALATED]["team"] == "billing"
    assert payloads[EventType.TICKET_ASSIGNED]["assignee"] == {"id": supervisor.pk, "username": "supervisor"}
    assert payloads[EventType.TICKET_RESOLVED]["resolved_by"] == {
        "kind": "person", "id": supervisor.pk, "username": "supervisor"
    }  # fmt: skip
    assert payloads[EventType.TICKET_REOPENED]["previous_status"] == "resolved"
    assert payloads[EventType.TICKET_REOPENED]["reopened_by"]["kind"] == "person"


def test_a_customer_writing_again_on_a_resolved_ticket_reopens_it_and_says_so(db, client):
    signed_post(client, ticket_payload())
    ticket = Ticket.objects.get()
    Ticket.objects.filter(pk=ticket.pk).update(status="resolved", resolved_at=timezone.now())
    follow_up = {
        "source": "zendesk",
        "ticket_external_id": "ZD-1001",
        "external_id": "m-2",
        "content": "Again.",
    }

    assert signed_post(client, follow_up, url=MESSAGES_URL).json()["outcome"] == "reopened"

    reopened = Event.objects.get(type=EventType.TICKET_REOPENED)
    assert (reopened.sequence, reopened.payload["reopened_by"]) == (2, {"kind": "customer"})


def test_a_triage_that_changes_nothing_announces_nothing(db):
    ticket = TicketFactory(category="BILLING_INQUIRY")
    with transaction.atomic():
        ticket_services.ticket_triage_set(ticket=ticket, category="BILLING_INQUIRY")

    assert events_of(ticket) == []


def test_the_ai_resolving_a_ticket_says_so(db):
    ticket = TicketFactory()
    ticket_services.ticket_resolve(ticket=ticket, by_ai=True)

    assert Event.objects.get().payload["resolved_by"] == {"kind": "ai"}


def test_the_controller_announces_the_review_items_it_queues_and_what_it_applies(db):
    policy("category", phase=2)
    queued = decision()
    policy("priority", phase=4, threshold=0.5)
    applied = decision(ticket=queued.ticket, decision_type="priority", confidence=0.9)

    submit(queued)
    submit(applied)

    types = [event_type for event_type, _ in events_of(queued.ticket)]
    assert types[0] == EventType.REVIEW_CREATED
    assert EventType.TICKET_TRIAGED in types[1:]
    # The first review announced is the queued category; the applied priority may be drawn
    # for a review afterwards (phase 4 samples one in five), announced after it.
    review = Event.objects.filter(type=EventType.REVIEW_CREATED).order_by("id").first()
    assert review.payload["decision_type"] == "category"
    assert review.payload["ticket_id"] == queued.ticket_id


def test_a_phase_change_and_a_new_alert_are_announced(db, supervisor):
    category = AutomationPolicy.objects.create(decision_type="category", phase=2, threshold=0.8)
    transitions.policy_promote(policy=category, actor=supervisor, reason="agreement 91 % on 400")
    finding = monitor.Finding(
        type=Alert.Type.ACCURACY_DEGRADATION, severity=Alert.Severity.HIGH, metric="accuracy",
        value=0.7, threshold=0.85, samples=100, recommendation="Demote to phase 2.",
    )  # fmt: skip
    monitor._alert_upsert(category, finding)
    monitor._alert_upsert(category, finding)  # the same problem again: the open alert is refreshed

    phase = Event.objects.get(type=EventType.POLICY_PHASE_CHANGED)
    assert (phase.subject_kind, phase.subject_id) == ("policy", "category")
    assert (phase.payload["from_phase"], phase.payload["to_phase"]) == (2, 3)
    assert phase.payload["actor"]["username"] == "supervisor"
    alert = Event.objects.get(type=EventType.ALERT_RAISED)
    assert alert.payload["type"] == "ACCURACY_DEGRADATION"


@pytest.mark.django_db(transaction=True)
def test_an_event_written_in_a_transaction_that_rolls_back_is_never_sent(receiver, endpoint_for):
    endpoint_for(receiver)
    ticket = TicketFactory()

    class Abandoned(Exception):
        pass

    with pytest.raises(Abandoned), transaction.atomic():
        ticket_services.ticket_resolve(ticket=ticket, by_ai=True)
        raise Abandoned

    assert not Event.objects.exists()
    ticket.refresh_from_db()
    assert ticket.status == Ticket.Status.NEW
    assert services.events_sweep(now=ticket.created_at + services.SWEEP_GRACE * 100) == (0, 0)
    assert receiver.received == []


@pytest.mark.django_db(transaction=True)
def test_an_event_outside_a_transaction_is_refused():
    with pytest.raises(RuntimeError, match="inside the transaction"):
        services.event_emit(type=EventType.TICKET_CREATED, subject=("ticket", 1), payload={})
    assert not Event.objects.exists()


def test_an_unknown_event_type_is_refused(db):
    with pytest.raises(ValueError, match="not an event type"), transaction.atomic():
        services.event_emit(type="ticket.exploded", subject=("ticket", 1), payload={})

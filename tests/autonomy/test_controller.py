"""The autonomy controller: each decision applied or sent to a person, per phase, exactly once."""

import pytest
from django.utils import timezone

from agents.models import AgentDecision, HumanLabel, PipelineRun
from autonomy.models import AutomationPolicy, CalibrationVersion, Disposition, ReviewItem
from autonomy.services import controller
from csai.errors import ApplicationError
from tests.factories import TicketFactory
from tickets.models import Message, Ticket

ESCALATE = {"escalate": True, "path": "billing", "level": 0, "to": "billing specialist", "urgency": "HIGH"}
REPLY = {"reply": "Hi Ana, we are checking your invoice.", "internal_note": "Billing.", "blocked": False}
VALUES = {
    "category": ("BILLING_INQUIRY", {"category": "BILLING_INQUIRY"}),
    "priority": ("CRITICAL", {"priority": "CRITICAL"}),
    "escalation": ("billing", ESCALATE),
    "reply": ("draft", REPLY),
}


def decision(ticket=None, decision_type="category", confidence=0.9, **fields) -> AgentDecision:
    ticket = ticket or TicketFactory()
    run, _ = PipelineRun.objects.get_or_create(
        ticket=ticket, number=1, defaults={"correlation_id": "c", "started_at": timezone.now()}
    )
    label, value = VALUES[decision_type]
    return AgentDecision.objects.create(
        ticket=ticket, run=run, agent="classifier", decision_type=decision_type, value=value,
        label=fields.pop("label", label), raw_confidence=confidence, reasoning="test", provider="local",
        latency_ms=1, correlation_id="c", created_at=timezone.now(), **fields,
    )  # fmt: skip


def policy(decision_type="category", *, phase, threshold=0.8, **fields) -> AutomationPolicy:
    """A policy in ``phase`` with an identity calibration and a global threshold."""
    calibration = CalibrationVersion.objects.create(
        decision_type=decision_type, version=1, params={"method": "identity", "n": 500, "xs": [], "ys": []},
        ece=0.02, brier=0.05, samples=500, fitted_at=timezone.now(),
    )  # fmt: skip
    return AutomationPolicy.objects.create(
        decision_type=decision_type, phase=phase, calibration=calibration, threshold=threshold, **fields
    )


def submit(d: AgentDecision) -> str:
    return controller.decision_submit(decision_id=d.pk)


def test_phase_1_records_the_answer_and_hides_it_from_the_reviewer(db):
    d = decision()
    assert submit(d) == Disposition.Kind.SHADOW
    item = ReviewItem.objects.get(decision=d)
    assert (item.kind, item.show_suggestion) == (ReviewItem.Kind.DECIDE, False)
    assert Ticket.objects.get(pk=d.ticket_id).category == ""


def test_phase_2_shows_the_suggestion_and_still_lets_the_person_decide(db):
    policy(phase=2)
    d = decision()
    assert submit(d) == Disposition.Kind.SUGGESTED
    assert ReviewItem.objects.get(decision=d).show_suggestion is True
    assert Ticket.objects.get(pk=d.ticket_id).category == ""


def test_phase_3_applies_a_confident_decision_and_queues_it_for_delayed_review(db):
    policy(phase=3)
    d = decision(confidence=0.93)
    assert submit(d) == Disposition.Kind.AUTO_APPLIED_WITH_REVIEW
    assert Ticket.objects.get(pk=d.ticket_id).category == "BILLING_INQUIRY"
    item = ReviewItem.objects.get(decision=d)
    assert (item.kind, item.sampling_rate) == (ReviewItem.Kind.DELAYED_REVIEW, 1.0)
    d.refresh_from_db()
    assert d.calibrated_confidence == pytest.approx(0.93)


def test_below_the_threshold_a_person_decides_and_learns_why(db):
    policy(phase=5)
    d = decision(confidence=0.6)
    assert submit(d) == Disposition.Kind.QUEUED_FOR_REVIEW
    assert "below threshold 0.80" in Disposition.objects.get(decision=d).reason
    assert Ticket.objects.get(pk=d.ticket_id).category == ""


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"out_of_scope": True}, "out of scope"),
        ({"label": ""}, "out of scope"),
        (
            {"guardrail_violations": [{"kind": "card_number", "detail": "card ending 4242"}]},
            "blocked by guardrails",
        ),
    ],
)
def test_out_of_scope_and_guardrail_blocks_always_go_to_a_person(db, fields, reason):
    policy(phase=5)
    d = decision(confidence=0.99, **fields)
    assert submit(d) == Disposition.Kind.QUEUED_FOR_REVIEW
    assert Disposition.objects.get(decision=d).reason == reason


def test_without_a_calibration_nothing_is_applied_even_in_phase_5(db):
    AutomationPolicy.objects.create(decision_type="category", phase=5, threshold=0.5)
    d = decision(confidence=0.99)
    assert submit(d) == Disposition.Kind.QUEUED_FOR_REVIEW
    assert Disposition.objects.get(decision=d).reason == "no calibration yet"


def test_a_class_threshold_overrides_the_global_one(db):
    policy(phase=5, threshold=0.8, class_thresholds={"BILLING_INQUIRY": 0.95})
    assert submit(decision(confidence=0.9)) == Disposition.Kind.QUEUED_FOR_REVIEW


def test_submitting_twice_applies_once(db):
    policy("reply", phase=5, review_rate_phase5=0.0)
    d = decision(decision_type="reply", confidence=0.95)
    assert submit(d) == Disposition.Kind.AUTO_APPLIED
    assert submit(d) == "already-disposed"
    ticket = Ticket.objects.get(pk=d.ticket_id)
    assert (
        ticket.messages.filter(kind=Message.Kind.EXTERNAL, sender_kind=Message.SenderKind.AI_AGENT).count()
        == 1
    )
    assert ticket.messages.filter(kind=Message.Kind.INTERNAL).count() == 1
    # An email ticket's reply is queued for delivery: the first response counts once it is sent.
    assert ticket.messages.get(kind=Message.Kind.EXTERNAL).delivery == "queued"
    assert ticket.first_response_at is None and ticket.status == Ticket.Status.OPEN
    assert Disposition.objects.count() == 1 and not ReviewItem.objects.exists()


def test_an_applied_priority_moves_the_sla_deadlines(db):
    policy("priority", phase=5)
    ticket = TicketFactory()
    before = ticket.first_response_due
    submit(decision(ticket, decision_type="priority", confidence=0.95))
    ticket.refresh_from_db()
    assert ticket.priority == "CRITICAL"
    assert ticket.first_response_due < before  # CRITICAL answers sooner than the intake default


def test_an_applied_escalation_escalates_with_a_note(db):
    policy("escalation", phase=5, review_rate_phase5=0.0)
    d = decision(decision_type="escalation", confidence=0.95)
    submit(d)
    ticket = Ticket.objects.get(pk=d.ticket_id)
    assert (ticket.status, ticket.team) == (Ticket.Status.ESCALATED, "billing")
    assert "billing specialist" in ticket.messages.get(kind=Message.Kind.INTERNAL).content


def test_phase_4_reviews_about_its_sampling_rate_of_applied_decisions(db):
    policy(phase=4, review_rate_phase4=0.2)
    kinds = [submit(decision(confidence=0.95)) for _ in range(300)]
    reviewed = kinds.count(Disposition.Kind.AUTO_APPLIED_WITH_REVIEW) / len(kinds)
    assert 0.12 < reviewed < 0.28
    assert set(ReviewItem.objects.values_list("sampling_rate", flat=True)) == {0.2}


def test_a_person_overriding_an_item_to_decide_sets_the_ticket_and_teaches_the_model(db, reviewer):
    d = decision()
    submit(d)
    item = ReviewItem.objects.get(decision=d)

    outcome = controller.review_item_answer(item=item, actor=reviewer, label="TECHNICAL_ISSUE", seconds=12.5)

    assert outcome == ReviewItem.Outcome.OVERRIDDEN
    assert Ticket.objects.get(pk=d.ticket_id).category == "TECHNICAL_ISSUE"
    label = HumanLabel.objects.get(ticket_id=d.ticket_id, decision_type="category")
    assert (label.value, label.source, label.labeled_by) == ("TECHNICAL_ISSUE", "review", reviewer)
    item.refresh_from_db()
    assert (item.status, item.human_label, item.seconds_to_decide) == ("done", "TECHNICAL_ISSUE", 12.5)
    with pytest.raises(ApplicationError, match="already been decided"):
        controller.review_item_answer(item=item, actor=reviewer, label="BUG_REPORT")


def test_a_delayed_review_that_corrects_an_applied_decision_corrects_the_ticket(db, reviewer):
    policy(phase=3)
    d = decision(confidence=0.95)
    submit(d)
    item = ReviewItem.objects.get(decision=d)
    assert controller.review_item_answer(item=item, actor=reviewer, label="BILLING_INQUIRY") == "confirmed"
    assert Ticket.objects.get(pk=d.ticket_id).category == "BILLING_INQUIRY"

    other = decision(confidence=0.95)
    submit(other)
    controller.review_item_answer(
        item=ReviewItem.objects.get(decision=other), actor=reviewer, label="BUG_REPORT"
    )
    assert Ticket.objects.get(pk=other.ticket_id).category == "BUG_REPORT"


def test_confirming_a_reply_draft_sends_it(db, reviewer):
    d = decision(decision_type="reply")
    submit(d)
    controller.review_item_answer(item=ReviewItem.objects.get(decision=d), actor=reviewer, label="draft")
    sent = Message.objects.get(ticket_id=d.ticket_id, kind=Message.Kind.EXTERNAL)
    assert sent.content.startswith("Hi Ana") and sent.sender_id == str(reviewer.pk)


def test_supervisors_see_policies_and_dispositions_but_phases_are_not_edited_in_the_admin(client, supervisor):
    supervisor.is_staff = True
    supervisor.save(update_fields=["is_staff"])
    client.force_login(supervisor)
    policy(phase=3)
    for page in ("automationpolicy", "calibrationversion", "disposition", "reviewitem"):
        assert client.get(f"/admin/autonomy/{page}/").status_code == 200, page
    page = client.get(f"/admin/autonomy/automationpolicy/{AutomationPolicy.objects.get().pk}/change/")
    assert 'name="target_precision"' in page.content.decode()
    assert 'name="phase"' not in page.content.decode()

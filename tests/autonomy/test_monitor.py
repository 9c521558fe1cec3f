"""Honest accuracy, readiness, calibration refits and the quality monitor that takes autonomy back."""

import numpy as np
import pytest
from django.core import mail
from django.utils import timezone

from agents.models import AgentDecision, ModelVersion, PipelineRun
from autonomy import selectors
from autonomy.calibration import confidence_histogram, label_mix
from autonomy.models import (
    Alert,
    AutomationPolicy,
    CalibrationVersion,
    Disposition,
    PhaseTransition,
    ReviewItem,
)
from autonomy.services import learning, monitor, transitions
from csai.errors import ApplicationError
from tests.conftest import token_client
from tests.factories import CustomerFactory, TicketFactory

DECIDE, DELAYED = ReviewItem.Kind.DECIDE, ReviewItem.Kind.DELAYED_REVIEW


@pytest.fixture
def customer(db):
    return CustomerFactory()


def reviewed(
    customer,
    *,
    kind=DELAYED,
    correct=True,
    rate=1.0,
    confidence=0.9,
    calibrated=None,
    label="BILLING_INQUIRY",
    status=ReviewItem.Status.DONE,
    priority="",
) -> ReviewItem:
    """One category decision with its disposition and a review item (answered by default)."""
    ticket = TicketFactory(customer=customer, priority=priority)
    run = PipelineRun.objects.create(ticket=ticket, number=1, correlation_id="c", started_at=timezone.now())
    now = timezone.now()
    decision = AgentDecision.objects.create(
        ticket=ticket, run=run, agent="classifier", decision_type="category", value={"category": label},
        label=label, raw_confidence=confidence, calibrated_confidence=calibrated, reasoning="test",
        provider="local", latency_ms=1, correlation_id="c", created_at=now,
    )  # fmt: skip
    applied = kind == DELAYED
    Disposition.objects.create(
        decision=decision, kind="auto_applied_with_review" if applied else "queued_for_review", phase=3,
        applied=applied, created_at=now,
    )  # fmt: skip
    done = status == ReviewItem.Status.DONE
    return ReviewItem.objects.create(
        decision=decision, ticket=ticket, decision_type="category", kind=kind, status=status,
        show_suggestion=True, uncertainty=1 - confidence, sampling_rate=rate, created_at=now,
        outcome=("confirmed" if correct else "overridden") if done else "",
        human_label=label if correct else "TECHNICAL_ISSUE", decided_at=now if done else None,
    )  # fmt: skip


def batch(customer, n: int, *, wrong: int = 0, **fields) -> None:
    for i in range(n):
        reviewed(customer, correct=i >= wrong, **fields)


def autonomous_policy(phase=4, **fields) -> AutomationPolicy:
    calibration = CalibrationVersion.objects.create(
        decision_type="category", version=1, params={"method": "identity", "n": 500, "xs": [], "ys": []},
        ece=0.02, brier=0.05, samples=500, fitted_at=timezone.now(),
        reference=fields.pop("reference", {}),
    )  # fmt: skip
    return AutomationPolicy.objects.create(
        decision_type="category", phase=phase, calibration=calibration, threshold=0.8, **fields
    )


# --- honest accuracy -----------------------------------------------------------------------


def test_autonomous_accuracy_comes_only_from_the_review_sample_of_applied_decisions(customer):
    batch(customer, 40, wrong=2, rate=0.2)  # sampled applied decisions: 38 of 40 right
    batch(customer, 60, wrong=30, kind=DECIDE, confidence=0.4)  # low confidence, sent to people anyway

    estimate = selectors.autonomous_accuracy(decision_type="category")

    assert estimate.n == 40
    assert estimate.value == pytest.approx(0.95)
    assert estimate.low < 0.95 < estimate.high


def test_samples_drawn_at_different_rates_are_weighted_back_to_the_population(customer):
    batch(customer, 10, rate=1.0, wrong=5)  # phase 3: every applied decision, half wrong
    batch(customer, 10, rate=0.1)  # phase 4: one in ten, all right — they stand for 100
    estimate = selectors.autonomous_accuracy(decision_type="category")
    assert estimate.value == pytest.approx(105 / 110)


# --- readiness -----------------------------------------------------------------------------


def test_phase_1_is_blocked_until_enough_humans_decided_and_the_hidden_answer_agreed(customer):
    policy = AutomationPolicy.objects.create(decision_type="category", phase=1)
    batch(customer, 50, kind=DECIDE, wrong=5)
    readiness = selectors.policy_readiness(policy=policy)
    assert not readiness.ready
    assert readiness.blockers == ["reviewed decisions 50 < 200"]

    batch(customer, 150, kind=DECIDE, wrong=60)  # 65 of 200 wrong: 0.675 agreement
    readiness = selectors.policy_readiness(policy=policy)
    assert readiness.blockers == ["shadow accuracy 0.68 < 0.80"]

    policy.criteria = {"1": {"min_accuracy": 0.6751}}  # just short: the blocker says by how much
    readiness = selectors.policy_readiness(policy=policy)
    assert readiness.blockers == ["shadow accuracy 0.6750 < 0.6751"]

    policy.criteria = {"1": {"min_accuracy": 0.6}}  # a looser bar, set per decision type
    readiness = selectors.policy_readiness(policy=policy)
    assert readiness.ready and readiness.blockers == []
    assert 0 < readiness.readiness_score <= 1


def test_phase_3_needs_autonomy_accuracy_and_no_critical_error(customer):
    policy = autonomous_policy(phase=3)
    batch(customer, 250, wrong=5)  # applied, reviewed, 98 % right
    batch(customer, 60, kind=DECIDE)  # 250 of 310 autonomous
    reviewed(customer, correct=False, priority="CRITICAL")

    readiness = selectors.policy_readiness(policy=policy)

    assert readiness.autonomous_rate == pytest.approx(251 / 311)
    assert readiness.autonomous_accuracy.value == pytest.approx(245 / 251)
    assert readiness.blockers == ["1 critical errors in this phase"]


# --- calibration ---------------------------------------------------------------------------


def test_a_refit_sets_the_threshold_where_the_lower_bound_meets_the_target(customer):
    model = ModelVersion.objects.create(
        decision_type="category", version=1, algorithm="t", artifact=b"", training_size=1, is_active=True,
        trained_at=timezone.now(),
    )  # fmt: skip
    policy = AutomationPolicy.objects.create(
        decision_type="category", phase=2, target_precision=0.9, min_samples=100
    )
    evidence = selectors.Reviewed(
        raw=np.array([0.95] * 150 + [0.5] * 150),
        correct=np.array([True] * 148 + [False] * 2 + [True] * 75 + [False] * 75),
        labels=["BILLING_INQUIRY"] * 300,
        eligible=np.ones(300, dtype=bool),
        weights=np.ones(300),
    )
    version = learning.calibration_refit(
        decision_type="category", model_version=model, evidence=evidence, source="holdout"
    )
    policy.refresh_from_db()
    assert policy.calibration == version and version.samples == 300
    # 148 of 150 right at the top: lower bound well above 0.9; adding the 0.5s would drag it to 0.74.
    assert policy.threshold == pytest.approx(version.bins[-1]["confidence"], abs=0.05)
    assert policy.class_thresholds == {"BILLING_INQUIRY": policy.threshold}

    # The same evidence with a minimum the top group cannot reach: no threshold, people decide.
    AutomationPolicy.objects.filter(pk=policy.pk).update(min_samples=200)
    learning.calibration_refit(
        decision_type="category", model_version=model, evidence=evidence, source="holdout"
    )
    policy.refresh_from_db()
    assert policy.threshold is None


# --- quality monitor -----------------------------------------------------------------------


def test_falling_accuracy_raises_a_high_alert_that_proposes_a_demotion(customer):
    policy = autonomous_policy(phase=4)
    batch(customer, 40, wrong=10)  # 75 % right
    batch(customer, 200, kind=DECIDE)  # autonomy low: not an over-automation risk

    (alert,) = monitor.quality_check(decision_type="category")

    assert (alert.type, alert.severity, alert.proposed_phase) == ("ACCURACY_DEGRADATION", "high", 2)
    assert alert.value == pytest.approx(0.75) and alert.samples == 40
    policy.refresh_from_db()
    assert policy.phase == 4  # proposed only: a supervisor decides


def test_overautomation_demotes_at_once_and_emails_the_supervisors(customer, supervisor):
    policy = autonomous_policy(phase=5)
    batch(customer, 50, wrong=8)  # 84 % right, and everything applied

    (alert,) = monitor.quality_check(decision_type="category")

    policy.refresh_from_db()
    assert (alert.type, alert.severity) == ("OVERAUTOMATION_RISK", "critical")
    assert policy.phase == 2
    transition = PhaseTransition.objects.get()
    assert transition.actor is None and "OVERAUTOMATION_RISK" in transition.reason
    assert alert.demotion == transition
    assert transition.rollback_point.snapshot["phase"] == 5  # a supervisor can go back
    assert [m.to for m in mail.outbox] == [[supervisor.email]]
    assert "OVERAUTOMATION_RISK" in mail.outbox[0].subject


def test_a_problem_that_persists_refreshes_its_alert_until_a_supervisor_acknowledges_it(
    customer, supervisor, reviewer
):
    autonomous_policy(phase=4)
    batch(customer, 40, wrong=10)
    batch(customer, 200, kind=DECIDE)
    first = monitor.quality_check(decision_type="category")[0]
    reviewed(customer, correct=False)
    again = monitor.quality_check(decision_type="category")[0]
    assert again.pk == first.pk and again.samples == 41
    assert Alert.objects.count() == 1

    with pytest.raises(ApplicationError):
        monitor.alert_acknowledge(alert=again, actor=reviewer)
    assert monitor.alert_acknowledge(alert=again, actor=supervisor, note="retraining")
    assert not monitor.alert_acknowledge(alert=again, actor=supervisor)
    assert monitor.quality_check(decision_type="category")[0].pk != first.pk  # still wrong: a new one


def test_a_new_input_mix_is_input_drift(customer):
    usual = ["BILLING_INQUIRY"] * 150 + ["TECHNICAL_ISSUE"] * 50
    reference = {"confidence": confidence_histogram([0.9] * 200), "labels": label_mix(usual)}
    autonomous_policy(phase=4, reference=reference)
    for label in usual:
        reviewed(customer, label=label, confidence=0.9, status=ReviewItem.Status.PENDING)
    assert monitor.quality_check(decision_type="category") == []

    for _ in range(120):  # then most tickets come out out of scope, confidence 0
        reviewed(customer, label="", confidence=0.0, kind=DECIDE, status=ReviewItem.Status.PENDING)

    (alert,) = monitor.quality_check(decision_type="category")
    assert alert.type == "INPUT_DRIFT" and alert.value > 0.5 and alert.proposed_phase == 2


def test_confidence_that_no_longer_matches_outcomes_is_calibration_drift(customer):
    autonomous_policy(phase=2)
    batch(customer, 300, kind=DECIDE, wrong=120, calibrated=0.95)  # says 95 %, is 60 %

    (alert,) = monitor.quality_check(decision_type="category")

    assert alert.type == "CALIBRATION_DRIFT" and alert.value == pytest.approx(0.35)
    assert alert.proposed_phase is None  # nothing autonomous to take back in phase 2


def test_a_jump_in_overrides_is_an_override_spike(customer):
    AutomationPolicy.objects.create(decision_type="category", phase=2)
    batch(customer, 400, kind=DECIDE, wrong=20)  # 5 % overridden …
    batch(customer, 100, kind=DECIDE, wrong=40)  # … then 40 %

    (alert,) = monitor.quality_check(decision_type="category")
    assert alert.type == "OVERRIDE_SPIKE" and alert.value == pytest.approx(0.4)


def test_a_decision_type_that_meets_its_next_phase_is_proposed_to_the_supervisors_not_promoted(
    customer, supervisor
):
    policy = AutomationPolicy.objects.create(decision_type="category", phase=1)
    batch(customer, 150, kind=DECIDE, wrong=10)
    assert monitor.promotion_propose(decision_type="category") is None  # 150 < 200 reviewed

    batch(customer, 50, kind=DECIDE)
    proposal = monitor.promotion_propose(decision_type="category")

    assert (proposal.type, proposal.severity, proposal.proposed_phase) == ("PROMOTION_READY", "info", 2)
    assert (proposal.metric, proposal.value, proposal.samples) == ("shadow_accuracy", 0.95, 200)
    assert "phase 2 (assisted)" in proposal.recommendation
    policy.refresh_from_db()
    assert policy.phase == 1  # the system proposes; a supervisor promotes
    assert [m.to for m in mail.outbox] == [[supervisor.email]]
    assert "PROMOTION_READY" in mail.outbox[0].subject
    # Still ready at the next check: the same proposal, no second email.
    assert monitor.promotion_propose(decision_type="category").pk == proposal.pk
    assert len(mail.outbox) == 1

    transitions.policy_promote(policy=policy, actor=supervisor, reason=proposal.recommendation)

    proposal.refresh_from_db()
    assert proposal.acknowledged_by == supervisor and proposal.note == "Closed by the move to phase 2."
    assert monitor.promotion_propose(decision_type="category") is None  # phase 2 starts from zero


def test_a_proposal_closes_itself_when_the_evidence_no_longer_holds(customer):
    AutomationPolicy.objects.create(decision_type="category", phase=1)
    batch(customer, 200, kind=DECIDE, wrong=10)
    proposal = monitor.promotion_propose(decision_type="category")

    batch(customer, 150, kind=DECIDE, wrong=150)  # shadow accuracy falls under 0.80

    assert monitor.promotion_propose(decision_type="category") is None
    proposal.refresh_from_db()
    assert proposal.acknowledged_at is not None and proposal.acknowledged_by is None
    assert proposal.note.startswith("No longer ready: shadow accuracy")


# --- REST ----------------------------------------------------------------------------------


def test_supervisors_read_readiness_and_acknowledge_alerts_over_the_api(customer, supervisor, reviewer):
    autonomous_policy(phase=4)
    batch(customer, 40, wrong=10)
    batch(customer, 200, kind=DECIDE)
    (alert,) = monitor.quality_check(decision_type="category")
    api = token_client(supervisor)

    readiness = api.get("/api/v1/policies/category/readiness/")
    assert readiness.status_code == 200
    assert readiness.json()["autonomous_accuracy"]["n"] == 40
    assert readiness.json()["blockers"]

    listed = api.get("/api/v1/alerts/").json()
    assert [(a["type"], a["severity"], a["acknowledged_by"]) for a in listed] == [
        ("ACCURACY_DEGRADATION", "high", None)
    ]
    url = f"/api/v1/alerts/{alert.pk}/acknowledge/"
    assert token_client(reviewer).post(url, {}, format="json").status_code == 403
    assert token_client(reviewer).get("/api/v1/policies/category/readiness/").status_code == 403
    done = api.post(url, {"note": "retraining"}, format="json")
    assert done.status_code == 200 and done.json()["acknowledged_by"] == "supervisor"
    assert api.post(url, {}, format="json").status_code == 409
    assert api.get(url).status_code == 405
    assert api.post("/api/v1/alerts/999999/acknowledge/", {}, format="json").status_code == 404

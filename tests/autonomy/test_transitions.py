"""Promotion, demotion and rollback: supervisors only, a reason always, a way back every time."""

import pytest
from django.utils import timezone

from agents.models import ModelVersion
from autonomy.models import AutomationPolicy, PhaseTransition, RollbackPoint
from autonomy.services import transitions
from csai.errors import ApplicationError
from tests.conftest import token_client


@pytest.fixture
def category_policy(db):
    return AutomationPolicy.objects.create(decision_type="category", phase=2, threshold=0.8)


def model_version(version: int, *, active: bool) -> ModelVersion:
    return ModelVersion.objects.create(
        decision_type="category", version=version, algorithm="test", artifact=b"", training_size=10,
        is_active=active, trained_at=timezone.now(),
    )  # fmt: skip


def test_a_supervisor_promotes_one_phase_with_a_reason_and_gets_a_rollback_point(category_policy, supervisor):
    transition = transitions.policy_promote(
        policy=category_policy, actor=supervisor, reason="agreement 91 % on 400"
    )

    category_policy.refresh_from_db()
    assert category_policy.phase == 3
    assert (transition.from_phase, transition.to_phase, transition.actor) == (2, 3, supervisor)
    assert transition.rollback_point.snapshot["phase"] == 2
    assert set(transition.metrics) >= {"decisions", "reviewed", "agreement_rate", "autonomous_rate"}


@pytest.mark.parametrize("reason", ["", "   "])
def test_a_transition_needs_a_reason(category_policy, supervisor, reason):
    with pytest.raises(ApplicationError, match="reason"):
        transitions.policy_promote(policy=category_policy, actor=supervisor, reason=reason)
    assert not PhaseTransition.objects.exists()


def test_a_reviewer_cannot_change_a_phase(category_policy, reviewer):
    with pytest.raises(ApplicationError) as refused:
        transitions.policy_demote(policy=category_policy, actor=reviewer, reason="I disagree")
    assert refused.value.status_code == 403
    category_policy.refresh_from_db()
    assert category_policy.phase == 2


def test_promotion_stops_at_5_and_demotion_goes_down_any_number_of_phases(category_policy, supervisor):
    AutomationPolicy.objects.filter(pk=category_policy.pk).update(phase=5)
    with pytest.raises(ApplicationError, match="highest"):
        transitions.policy_promote(policy=category_policy, actor=supervisor, reason="more")
    transitions.policy_demote(policy=category_policy, actor=supervisor, reason="accuracy dropped", to_phase=1)
    category_policy.refresh_from_db()
    assert category_policy.phase == 1
    with pytest.raises(ApplicationError):
        transitions.policy_demote(policy=category_policy, actor=supervisor, reason="lower still")


def test_the_system_itself_may_demote(category_policy):
    transition = transitions.policy_demote(policy=category_policy, actor=None, reason="OVERAUTOMATION_RISK")
    assert transition.actor is None and transition.to_phase == 1


def test_restoring_a_rollback_point_brings_back_phase_thresholds_and_model(category_policy, supervisor):
    old_model = model_version(1, active=True)
    first = transitions.policy_promote(policy=category_policy, actor=supervisor, reason="ready")
    AutomationPolicy.objects.filter(pk=category_policy.pk).update(
        threshold=0.6, class_thresholds={"BUG_REPORT": 0.5}
    )
    ModelVersion.objects.update(is_active=False)
    new_model = model_version(2, active=True)

    restore = transitions.rollback_restore(
        point=first.rollback_point, actor=supervisor, reason="new model worse"
    )

    category_policy.refresh_from_db()
    assert (category_policy.phase, category_policy.threshold, category_policy.class_thresholds) == (
        2,
        0.8,
        {},
    )
    assert ModelVersion.objects.get(is_active=True) == old_model
    new_model.refresh_from_db()
    assert not new_model.is_active
    assert restore.direction == "rollback" and restore.to_phase == 2
    # The restore itself can be undone.
    assert restore.rollback_point.snapshot["threshold"] == 0.6


# --- REST ----------------------------------------------------------------------------------


def test_the_api_promotes_for_a_supervisor_and_audits_it(category_policy, supervisor):
    api = token_client(supervisor)
    response = api.post("/api/v1/policies/category/promote/", {"reason": "criteria met"}, format="json")
    assert response.status_code == 201
    assert response.json()["to_phase"] == 3 and response.json()["actor"] == "supervisor"
    points = api.get("/api/v1/policies/category/rollback-points/").json()
    assert points[0]["snapshot"]["phase"] == 2

    restored = api.post(
        f"/api/v1/rollback-points/{points[0]['id']}/restore/", {"reason": "undo"}, format="json"
    )
    assert restored.status_code == 201
    assert api.get("/api/v1/policies/").json()[0]["phase"] == 2
    assert PhaseTransition.objects.count() == 2 and RollbackPoint.objects.count() == 2


def test_the_api_refuses_reviewers_outsiders_and_missing_reasons(
    category_policy, reviewer, outsider, supervisor, client
):
    url = "/api/v1/policies/category/promote/"
    assert client.post(url, {"reason": "x"}).status_code in (401, 403)
    assert token_client(outsider).post(url, {"reason": "x"}, format="json").status_code == 403
    assert token_client(reviewer).post(url, {"reason": "x"}, format="json").status_code == 403
    assert token_client(reviewer).get("/api/v1/policies/").status_code == 200
    missing = token_client(supervisor).post(url, {}, format="json")
    assert missing.status_code == 400 and "reason" in missing.json()
    assert token_client(supervisor).post("/api/v1/policies/nope/promote/", {"reason": "x"}).status_code == 404
    assert token_client(supervisor).get(url).status_code == 405
    category_policy.refresh_from_db()
    assert category_policy.phase == 2

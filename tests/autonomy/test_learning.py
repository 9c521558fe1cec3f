"""The learning loop: a candidate model replaces the current one only if it is not worse."""

import pytest

from agents import loaded
from agents.models import HumanLabel, ModelVersion
from agents.services import held_out, history_import
from autonomy import selectors
from autonomy.models import AutomationPolicy
from autonomy.services import learning
from lab import starter


@pytest.fixture
def labelled(db):
    """300 imported demo tickets with their true categories (a fifth of them held out)."""
    history_import(rows=starter.history_rows(count=300), source="history")
    loaded.forget_loaded()
    yield
    loaded.forget_loaded()


def test_the_first_candidate_is_promoted_with_a_calibration_fitted_on_held_out_tickets(labelled):
    assert selectors.retrain_due(decision_type="category")

    result = learning.model_retrain(decision_type="category")

    assert result.status == "promoted" and result.current_accuracy is None
    model = ModelVersion.objects.get(decision_type="category", is_active=True)
    held = sum(held_out(t) for t in HumanLabel.objects.filter(decision_type="category").values_list(
        "ticket_id", flat=True))  # fmt: skip
    assert result.held_out == held and model.training_size == 300 - held
    policy = AutomationPolicy.objects.get(decision_type="category")
    assert policy.calibration.model_version == model
    assert policy.calibration.source == "holdout" and policy.calibration.samples == held
    assert policy.calibration.reference["labels"]  # what drift is measured against
    assert not selectors.retrain_due(decision_type="category")  # nothing new to learn from


def test_a_worse_candidate_is_rejected_and_the_current_model_stays(labelled):
    learning.model_retrain(decision_type="category")
    current = ModelVersion.objects.get(decision_type="category", is_active=True)
    # Someone mislabels every training ticket; the held-out fifth keeps the truth.
    for label in HumanLabel.objects.filter(decision_type="category"):
        if not held_out(label.ticket_id):
            label.value = "FEATURE_REQUEST" if label.value != "FEATURE_REQUEST" else "BUG_REPORT"
            label.save(update_fields=["value"])

    result = learning.model_retrain(decision_type="category")

    assert result.status == "rejected"
    assert result.candidate_accuracy < result.current_accuracy
    assert ModelVersion.objects.get(decision_type="category", is_active=True) == current
    assert ModelVersion.objects.filter(decision_type="category").count() == 2  # kept, for the record


@pytest.mark.django_db
def test_without_held_out_tickets_to_judge_on_a_model_in_use_is_not_replaced():
    # 60 tickets: about a dozen held out, too few to judge a candidate on.
    history_import(rows=starter.history_rows(count=60), source="history")
    loaded.forget_loaded()
    first = learning.model_retrain(decision_type="category")
    assert first.status == "promoted-unjudged"  # a first model is better than none
    current = ModelVersion.objects.get(decision_type="category", is_active=True)

    second = learning.model_retrain(decision_type="category")

    assert second.status == "kept-unjudged"
    assert ModelVersion.objects.get(decision_type="category", is_active=True) == current
    loaded.forget_loaded()

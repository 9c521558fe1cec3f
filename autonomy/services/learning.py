"""Learning from people's answers: calibration refits and model retraining."""

import logging
from dataclasses import dataclass

import numpy as np
from django.conf import settings
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from agents.loaded import active_model
from agents.ml import brier, expected_calibration_error, reliability_bins
from agents.models import ModelVersion
from agents.services import model_activate, model_candidate
from autonomy import selectors
from autonomy.calibration import (
    calibration_fit,
    confidence_histogram,
    label_mix,
    threshold_select,
    thresholds_per_class,
)
from autonomy.models import CalibrationVersion
from autonomy.services.controller import policy_for
from autonomy.services.transitions import policy_locked

logger = logging.getLogger(__name__)


def calibration_refit(
    *, decision_type: str, model_version: ModelVersion | None, evidence: selectors.Reviewed, source: str
) -> CalibrationVersion:
    """Fit a new calibration and the thresholds it implies, and put both on the policy.

    Global threshold from every eligible decision; a class gets its own when it has
    ``min_samples`` of its own. Too little evidence for a threshold leaves none: then
    every decision goes to a person.
    """
    calibration = calibration_fit(evidence.raw, evidence.correct, evidence.weights)
    calibrated = calibration.apply(evidence.raw)
    eligible = evidence.eligible
    with transaction.atomic():
        policy = policy_locked(policy_for(decision_type))
        kwargs = {"target": policy.target_precision, "min_samples": policy.min_samples}
        threshold = threshold_select(
            calibrated[eligible], evidence.correct[eligible], weights=evidence.weights[eligible], **kwargs
        )
        per_class = thresholds_per_class(
            calibrated[eligible],
            evidence.correct[eligible],
            [label for label, keep in zip(evidence.labels, eligible, strict=True) if keep],
            weights=evidence.weights[eligible],
            fallback=threshold,
            **kwargs,
        )
        last = CalibrationVersion.objects.filter(decision_type=decision_type).aggregate(n=Max("version"))["n"]
        correct = evidence.correct.astype(float)
        version = CalibrationVersion.objects.create(
            decision_type=decision_type,
            version=(last or 0) + 1,
            params=calibration.to_dict(),
            bins=reliability_bins(calibrated, correct),
            ece=expected_calibration_error(calibrated, correct) if len(correct) else 0.0,
            brier=brier(calibrated, correct) if len(correct) else 0.0,
            samples=len(correct),
            model_version=model_version,
            source=source,
            reference=drift_reference(raw=evidence.raw, labels=evidence.labels, weights=evidence.weights),
            fitted_at=timezone.now(),
        )
        policy.calibration = version
        policy.threshold = threshold
        policy.class_thresholds = per_class
        policy.save(update_fields=["calibration", "threshold", "class_thresholds", "updated_at"])
    logger.info(
        "calibration fitted",
        extra={
            "decision_type": decision_type,
            "version": version.version,
            "samples": version.samples,
            "ece": round(version.ece, 4),
            "threshold": threshold,
        },
    )
    return version


def drift_reference(*, raw, labels: list[str], weights) -> dict:
    """What the inputs looked like when a calibration was fitted: raw confidence histogram
    and predicted-label mix, each weighted back to the whole population of decisions."""
    return {
        "confidence": confidence_histogram(raw, weights),
        "labels": label_mix(labels, weights=weights),
    }


def calibration_refresh(*, decision_type: str) -> CalibrationVersion | None:
    """Refit the active model's calibration on its reviewed decisions, when they are more
    evidence than the current calibration rests on. None when nothing changed."""
    model = ModelVersion.objects.filter(decision_type=decision_type, is_active=True).first()
    if model is None:
        return None
    reviewed = selectors.reviewed_decisions(decision_type=decision_type, model_version_id=model.pk)
    current = policy_for(decision_type).calibration
    if len(reviewed) == 0 or (
        current is not None and current.model_version_id == model.pk and len(reviewed) <= current.samples
    ):
        return None
    return calibration_refit(
        decision_type=decision_type, model_version=model, evidence=reviewed, source="reviews"
    )


@dataclass(frozen=True)
class RetrainResult:
    """What a retraining did: ``status`` is promoted, rejected, kept-unjudged,
    promoted-unjudged or too-few-labels."""

    status: str
    version: int | None = None
    held_out: int | None = None
    candidate_accuracy: float | None = None
    current_accuracy: float | None = None


def model_retrain(*, decision_type: str, tolerance: float = 0.0) -> RetrainResult:
    """Train a candidate on the confirmed outcomes and promote it only if it is not worse.

    Candidate and current model are both judged on the held-out fifth of reviewed tickets
    (weighted back to the population), which neither was trained on. A promoted candidate
    gets its calibration and thresholds from those held-out predictions at once, so the
    controller never applies a new model's decisions on an old model's calibration.
    """
    trained = model_candidate(decision_type=decision_type)
    if trained is None:
        return RetrainResult("too-few-labels")
    candidate, held, predictions = trained.version, trained.held, trained.predictions
    current = active_model(decision_type)
    if len(held.texts) < settings.CSAI_RETRAIN_MIN_HELD_OUT:
        # Nothing to judge on yet. A first model is better than none; a model in use, with a
        # calibration its decisions have earned, is not swapped for an unjudged one.
        if current is not None:
            return RetrainResult("kept-unjudged", version=candidate.version)
        model_activate(version=candidate)
        return RetrainResult("promoted-unjudged", version=candidate.version)
    weights = selectors.label_weights(decision_type=decision_type, ticket_ids=held.ticket_ids)
    truth = np.asarray(held.labels)
    labels = np.asarray([p.label for p in predictions])
    candidate_accuracy = float(np.average(labels == truth, weights=weights))
    current_accuracy = None
    if current is not None:
        current_labels = np.asarray([p.label for p in current.classifier.predict_many(held.texts)])
        current_accuracy = float(np.average(current_labels == truth, weights=weights))
    judged = {
        "version": candidate.version,
        "held_out": len(held.texts),
        "candidate_accuracy": round(candidate_accuracy, 4),
        "current_accuracy": None if current_accuracy is None else round(current_accuracy, 4),
    }
    if current_accuracy is not None and candidate_accuracy < current_accuracy - tolerance:
        logger.info("candidate model rejected", extra={"decision_type": decision_type, **judged})
        return RetrainResult("rejected", **judged)
    evidence = selectors.Reviewed(
        raw=np.array([p.confidence for p in predictions], dtype=float),
        correct=labels == truth,
        labels=[p.label for p in predictions],
        eligible=np.array([not p.out_of_scope for p in predictions], dtype=bool),
        weights=weights,
    )
    with transaction.atomic():
        model_activate(version=candidate)
        calibration_refit(
            decision_type=decision_type, model_version=candidate, evidence=evidence, source="holdout"
        )
    logger.info("candidate model promoted", extra={"decision_type": decision_type, **judged})
    return RetrainResult("promoted", **judged)

from django.db.models import Count, Q

from agents.models import AgentDecision, ModelVersion
from autonomy.models import AutomationPolicy, Disposition, ReviewItem


def policy_metrics(*, decision_type: str) -> dict:
    """The evidence a transition is recorded with: volumes, agreement, autonomy."""
    decisions = AgentDecision.objects.filter(decision_type=decision_type).count()
    kinds = dict(
        Disposition.objects.filter(decision__decision_type=decision_type)
        .values_list("kind")
        .annotate(n=Count("id"))
        .order_by()
    )
    reviews = ReviewItem.objects.filter(decision_type=decision_type, status=ReviewItem.Status.DONE).aggregate(
        reviewed=Count("id"), confirmed=Count("id", filter=Q(outcome=ReviewItem.Outcome.CONFIRMED))
    )
    disposed = sum(kinds.values())
    applied = kinds.get(Disposition.Kind.AUTO_APPLIED, 0) + kinds.get(
        Disposition.Kind.AUTO_APPLIED_WITH_REVIEW, 0
    )
    return {
        "decisions": decisions,
        "dispositions": kinds,
        "reviewed": reviews["reviewed"],
        "agreement_rate": reviews["confirmed"] / reviews["reviewed"] if reviews["reviewed"] else None,
        "autonomous_rate": applied / disposed if disposed else None,
    }


def policy_snapshot(*, policy: AutomationPolicy) -> dict:
    """Everything a rollback restores."""
    model_id = (
        ModelVersion.objects.filter(decision_type=policy.decision_type, is_active=True)
        .values_list("id", flat=True)
        .first()
    )
    return {
        "phase": policy.phase,
        "criticality": policy.criticality,
        "target_precision": policy.target_precision,
        "min_samples": policy.min_samples,
        "review_rate_phase3": policy.review_rate_phase3,
        "review_rate_phase4": policy.review_rate_phase4,
        "review_rate_phase5": policy.review_rate_phase5,
        "calibration_id": policy.calibration_id,
        "threshold": policy.threshold,
        "class_thresholds": policy.class_thresholds,
        "model_version_id": model_id,
    }

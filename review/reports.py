"""Reads behind the supervisor pages: readiness, alerts and the calibration report (the
dashboard is review.dashboard).

Reuses the autonomy app's selectors and calibration functions, so a page shows the numbers
the controller acts on. Counts, averages and per-day series are aggregated in the database
(``TruncDate``, filtered ``Count``/``Sum``); only the reviewed decisions of one decision type
(at most ``settings.CSAI_CALIBRATION_WINDOW``) are loaded as arrays, for the curves.
"""

import numpy as np
from django.conf import settings
from django.db.models import (
    Count,
    F,
)

from agents import decision_types
from agents.ml import brier, expected_calibration_error, reliability_bins
from autonomy import selectors as autonomy
from autonomy.calibration import (
    Calibration,
    coverage_at,
    threshold_select,
)
from autonomy.models import (
    Alert,
    AutomationPolicy,
    PhaseTransition,
    ReviewItem,
    RollbackPoint,
)

RELIABILITY_BINS = 10
# A confusion matrix with more classes than this shows the most confused ones.
CONFUSION_TOP = 10
NO_LABEL = "(none)"


# --- autonomy --------------------------------------------------------------------------------


def autonomy_overview() -> list[dict]:
    """Every configured decision type: its policy, phase and readiness for the next one."""
    rows = []
    for policy in AutomationPolicy.objects.select_related("calibration").order_by("decision_type"):
        readiness = autonomy.policy_readiness(policy=policy)
        phase = policy.current_phase
        rows.append(
            {
                "policy": policy,
                "decision_type": policy.decision_type,
                "phase_name": phase.label,
                "next_phase": phase.next,
                "next_phase_name": phase.next.label if phase.next else "",
                "lower_phases": phase.lower,
                **readiness.to_dict(),
            }
        )
    return rows


def unconfigured_decision_types() -> list[str]:
    """Decision types without a policy yet: phase 1 until their first decision."""
    configured = set(AutomationPolicy.objects.values_list("decision_type", flat=True))
    return [name for name in decision_types.names() if name not in configured]


def recent_transitions(*, limit: int = 25) -> list[PhaseTransition]:
    return list(PhaseTransition.objects.select_related("policy", "actor", "rollback_point")[:limit])


def recent_rollback_points(*, limit: int = 25) -> list[RollbackPoint]:
    return list(RollbackPoint.objects.select_related("policy", "created_by", "transition")[:limit])


def transition_dict(transition: PhaseTransition) -> dict:
    return {
        "id": transition.pk,
        "decision_type": transition.policy.decision_type,
        "direction": transition.direction,
        "from_phase": transition.from_phase,
        "to_phase": transition.to_phase,
        "actor": transition.actor.get_username() if transition.actor else "system",
        "reason": transition.reason,
        "rollback_point": transition.rollback_point_id,
        "created_at": transition.created_at.isoformat(),
        "metrics": transition.metrics,
    }


def readiness_rows(overview: list[dict]) -> list[dict]:
    """The readiness table, flat: one row per decision type, for CSV."""
    rows = []
    for row in overview:
        accuracy = row["autonomous_accuracy"]
        rows.append(
            {
                "decision_type": row["decision_type"],
                "phase": row["phase"],
                "phase_name": row["phase_name"],
                "decisions": row["decisions"],
                "reviewed": row["reviewed"],
                "agreement_rate": row["agreement_rate"],
                "autonomous_rate": row["autonomous_rate"],
                "autonomous_accuracy": accuracy["value"],
                "autonomous_accuracy_low": accuracy["low"],
                "autonomous_accuracy_high": accuracy["high"],
                "autonomous_accuracy_n": accuracy["n"],
                "ece": row["ece"],
                "critical_errors": row["critical_errors"],
                "readiness_score": row["readiness_score"],
                "threshold": row["threshold"],
                "ready": row["ready"],
                "blockers": "; ".join(row["blockers"]),
            }
        )
    return rows


# --- alerts ----------------------------------------------------------------------------------


def alert_list(*, limit: int = 200) -> list[Alert]:
    """Open alerts first (newest first), then acknowledged ones, latest acknowledged first."""
    alerts = Alert.objects.select_related("acknowledged_by").order_by(
        F("acknowledged_at").desc(nulls_first=True), "-created_at", "-id"
    )
    return list(alerts[:limit])


def open_alert_count() -> int:
    return Alert.objects.filter(acknowledged_at__isnull=True).count()


def alert_rows(alerts: list[Alert]) -> list[dict]:
    return [
        {
            "id": alert.pk,
            "status": "acknowledged" if alert.acknowledged_at else "open",
            "type": alert.type,
            "severity": alert.severity,
            "decision_type": alert.decision_type,
            "metric": alert.metric,
            "value": alert.value,
            "threshold": alert.threshold,
            "samples": alert.samples,
            "recommendation": alert.recommendation,
            "proposed_phase": alert.proposed_phase,
            "opened_at": alert.created_at.isoformat(),
            "acknowledged_by": alert.acknowledged_by.get_username() if alert.acknowledged_by else "",
            "acknowledged_at": alert.acknowledged_at.isoformat() if alert.acknowledged_at else "",
            "note": alert.note,
        }
        for alert in alerts
    ]


# --- calibration -----------------------------------------------------------------------------


def calibration_report(*, decision_type: str, target: float | None = None) -> dict:
    """How well confidence predicts correctness for one decision type, on its reviewed decisions.

    Confidences are the raw ones mapped through the policy's current calibration (as the
    controller sees them today). The threshold suggestion is the controller's own search:
    the lowest confidence whose Wilson lower bound of precision meets ``target``.
    """
    policy = (
        AutomationPolicy.objects.select_related("calibration").filter(decision_type=decision_type).first()
    )
    target = target if target is not None else (policy.target_precision if policy else 0.9)
    min_samples = policy.min_samples if policy else 100
    evidence = autonomy.reviewed_decisions(decision_type=decision_type)
    if policy and policy.calibration:
        confidence = Calibration.from_dict(policy.calibration.params).apply(evidence.raw)
    else:
        confidence = np.clip(evidence.raw, 0.0, 1.0)
    correct = evidence.correct.astype(float)
    eligible = evidence.eligible
    c, y, w = confidence[eligible], evidence.correct[eligible], evidence.weights[eligible]
    suggested = threshold_select(c, y, target=target, min_samples=min_samples, weights=w) if len(c) else None
    current = policy.threshold if policy else None
    classes, confusion, pairs = _confusion(decision_type=decision_type)
    return {
        "decision_type": decision_type,
        "policy": policy,
        "calibration": policy.calibration if policy else None,
        "target": target,
        "min_samples": min_samples,
        "n": len(evidence),
        "eligible": int(eligible.sum()),
        "accuracy": float(correct.mean()) if len(correct) else None,
        # ECE on the controller's bins (as stored with a calibration); the diagram uses fewer.
        "ece": expected_calibration_error(confidence, correct) if len(correct) else None,
        "brier": brier(confidence, correct) if len(correct) else None,
        "bins": reliability_bins(confidence, correct, bins=RELIABILITY_BINS),
        "curve": risk_coverage(c, y, w),
        "current": _at(c, y, current),
        "suggested": _at(c, y, suggested),
        "classes": classes,
        "confusion": confusion,
        "pairs": pairs,
    }


def calibration_dict(report: dict) -> dict:
    """The report without model objects, for JSON."""
    version = report["calibration"]
    data = {key: value for key, value in report.items() if key not in ("policy", "calibration")}
    data["threshold_current"] = report["policy"].threshold if report["policy"] else None
    data["calibration"] = (
        {
            "version": version.version,
            "method": version.params.get("method"),
            "samples": version.samples,
            "ece": version.ece,
            "brier": version.brier,
            "source": version.source,
            "fitted_at": version.fitted_at.isoformat(),
        }
        if version
        else None
    )
    return data


def _at(confidence, correct, threshold: float | None) -> dict:
    coverage, precision, n = coverage_at(confidence, correct, threshold)
    return {"threshold": threshold, "coverage": coverage, "precision": precision, "n": n}


def risk_coverage(confidence, correct, weights, *, points: int = 100) -> list[dict]:
    """Acting on the most confident share ``coverage``: the (weighted) share of mistakes, and
    the confidence it takes. At most ``points`` points, the last at full coverage."""
    if not len(confidence):
        return []
    order = np.argsort(-np.asarray(confidence), kind="stable")
    c, y, w = (
        np.asarray(confidence)[order],
        np.asarray(correct, dtype=float)[order],
        np.asarray(weights)[order],
    )
    hits, total = np.cumsum(w * y), np.cumsum(w)
    n = len(c)
    picks = sorted({min(n - 1, int(round(i * (n - 1) / (points - 1)))) for i in range(points)} | {n - 1})
    return [
        {"coverage": (i + 1) / n, "risk": float(1 - hits[i] / total[i]), "confidence": float(c[i])}
        for i in picks
    ]


def _confusion(*, decision_type: str) -> tuple[list[dict], dict, list[dict]]:
    """Per-class precision / recall / support, the confusion matrix (the most confused classes
    when there are many) and the most frequent mistakes — counted by the database over the
    same reviewed decisions the curves use."""
    latest = (
        ReviewItem.objects.filter(decision_type=decision_type, status=ReviewItem.Status.DONE)
        .order_by("-decided_at", "-id")
        .values("id")[: settings.CSAI_CALIBRATION_WINDOW]
    )
    cells = (
        ReviewItem.objects.filter(pk__in=latest)
        .values_list("decision__label", "human_label")
        .annotate(n=Count("id"))
        .order_by()
    )
    counts: dict[tuple[str, str], int] = {}
    for predicted, truth, n in cells:
        key = (predicted or NO_LABEL, truth or NO_LABEL)
        counts[key] = counts.get(key, 0) + n
    predicted_n: dict[str, int] = {}
    truth_n: dict[str, int] = {}
    hits: dict[str, int] = {}
    confused: dict[str, int] = {}
    for (predicted, truth), n in counts.items():
        predicted_n[predicted] = predicted_n.get(predicted, 0) + n
        truth_n[truth] = truth_n.get(truth, 0) + n
        if predicted == truth:
            hits[predicted] = hits.get(predicted, 0) + n
        else:
            confused[predicted] = confused.get(predicted, 0) + n
            confused[truth] = confused.get(truth, 0) + n
    labels = sorted(set(predicted_n) | set(truth_n), key=lambda label: (-truth_n.get(label, 0), label))
    classes = [
        {
            "label": label,
            "precision": hits.get(label, 0) / predicted_n[label] if predicted_n.get(label) else None,
            "recall": hits.get(label, 0) / truth_n[label] if truth_n.get(label) else None,
            "support": truth_n.get(label, 0),
            "predicted": predicted_n.get(label, 0),
        }
        for label in labels
    ]
    shown = labels
    if len(labels) > CONFUSION_TOP:
        top = sorted(labels, key=lambda label: (-confused.get(label, 0), -truth_n.get(label, 0), label))
        shown = [label for label in labels if label in set(top[:CONFUSION_TOP])]
    matrix = {
        "labels": shown,
        "rows": [[counts.get((predicted, truth), 0) for predicted in shown] for truth in shown],
        "partial": len(shown) < len(labels),
        "classes": len(labels),
    }
    pairs = sorted(
        (
            {"predicted": predicted, "truth": truth, "n": n}
            for (predicted, truth), n in counts.items()
            if predicted != truth
        ),
        key=lambda pair: (-pair["n"], pair["predicted"], pair["truth"]),
    )[:10]
    return classes, matrix, pairs

"""Reads behind the supervisor pages: readiness, alerts, the calibration report, the dashboard.

Reuses the autonomy app's selectors and calibration functions, so a page shows the numbers
the controller acts on. Counts, averages and per-day series are aggregated in the database
(``TruncDate``, filtered ``Count``/``Sum``); only the reviewed decisions of one decision type
(at most ``selectors.CALIBRATION_WINDOW``) are loaded as arrays, for the curves.
"""

from datetime import datetime, time, timedelta

import numpy as np
from django.conf import settings
from django.db.models import (
    Avg,
    Case,
    Count,
    DurationField,
    ExpressionWrapper,
    F,
    FloatField,
    Q,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Greatest, TruncDate
from django.utils import timezone

from agents import decision_types
from agents.ml import brier, expected_calibration_error, reliability_bins
from autonomy import selectors as autonomy
from autonomy.calibration import (
    MIN_SAMPLING_RATE,
    Calibration,
    coverage_at,
    threshold_select,
    weighted_estimate,
)
from autonomy.models import (
    Alert,
    AutomationPolicy,
    Disposition,
    PhaseTransition,
    ReviewItem,
    RollbackPoint,
)
from tickets.models import Ticket

RELIABILITY_BINS = 10
# A confusion matrix with more classes than this shows the most confused ones.
CONFUSION_TOP = 10
NO_LABEL = "(none)"
CLOSED = (Ticket.Status.RESOLVED, Ticket.Status.CLOSED)


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
                "next_phase_name": phase.next.label if phase.next else "",
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


# --- dashboard -------------------------------------------------------------------------------


def _hours(duration: timedelta | None) -> float | None:
    return duration.total_seconds() / 3600 if duration is not None else None


def _share(part: float, whole: float) -> float | None:
    return part / whole if whole else None


def _ticket_aggregates(now) -> dict:
    """Filtered counts and averages of tickets, for a period or one day (``TruncDate``)."""
    met_response = Q(first_response_at__isnull=False, first_response_at__lte=F("first_response_due")) | Q(
        first_response_at__isnull=True, first_response_due__gt=now
    )
    met_resolution = Q(resolved_at__isnull=False, resolved_at__lte=F("resolution_due")) | Q(
        resolved_at__isnull=True, resolution_due__gt=now
    )
    return {
        "created": Count("id"),
        "escalated": Count("id", filter=Q(escalated_at__isnull=False) | Q(status=Ticket.Status.ESCALATED)),
        "sla_met": Count("id", filter=met_response & met_resolution),
        "first_response": Avg(
            ExpressionWrapper(F("first_response_at") - F("created_at"), output_field=DurationField())
        ),
        "responded": Count("first_response_at"),
        "resolution": Avg(
            ExpressionWrapper(F("resolved_at") - F("created_at"), output_field=DurationField())
        ),
        "resolved": Count("resolved_at"),
    }


def _review_aggregates() -> dict:
    """Weighted sums behind autonomous accuracy (as selectors.autonomous_accuracy: each sampled
    review weighs 1 / its sampling rate; the interval on Kish's effective n)."""
    weight = ExpressionWrapper(
        Value(1.0) / Greatest(F("sampling_rate"), Value(MIN_SAMPLING_RATE)), output_field=FloatField()
    )
    confirmed = Case(When(outcome=ReviewItem.Outcome.CONFIRMED, then=weight), default=Value(0.0))
    return {
        "reviews": Count("id"),
        "w": Sum(weight),
        "w_hits": Sum(confirmed, output_field=FloatField()),
        "w_squares": Sum(weight * weight),
    }


def _accuracy(row: dict) -> dict:
    return weighted_estimate(
        hits=row.get("w_hits") or 0.0,
        total=row.get("w") or 0.0,
        squares=row.get("w_squares") or 0.0,
        n=row.get("reviews") or 0,
    ).to_dict()


def _ticket_figures(row: dict) -> dict:
    return {
        "tickets": row["created"],
        "escalated": row["escalated"],
        "escalation_rate": _share(row["escalated"], row["created"]),
        "sla_compliance": _share(row["sla_met"], row["created"]),
        "first_response_hours": _hours(row["first_response"]),
        "resolution_hours": _hours(row["resolution"]),
        "responded": row["responded"],
        "resolved": row["resolved"],
    }


def dashboard_report(*, days: int = 30) -> dict:
    """Headline figures now and for the last ``days`` days, and the same by day.

    Ticket figures are by the day a ticket was created (its first response and resolution
    times, whether it met both SLA deadlines — or has not missed them yet — and whether it
    was ever escalated); automation rate by the day of the disposition; autonomous accuracy
    by the day the sampled review was answered.
    """
    now = timezone.now()
    today = timezone.localdate(now)
    first_day = today - timedelta(days=days - 1)
    start = timezone.make_aware(datetime.combine(first_day, time.min))
    start_today = timezone.make_aware(datetime.combine(today, time.min))

    tickets = Ticket.objects.filter(created_at__gte=start)
    ticket_days = {
        row["day"]: row
        for row in tickets.annotate(day=TruncDate("created_at"))
        .values("day")
        .annotate(**_ticket_aggregates(now))
        .order_by("day")
    }
    ticket_total = tickets.aggregate(**_ticket_aggregates(now))

    applied = Q(kind__in=autonomy.APPLIED)
    dispositions = Disposition.objects.filter(created_at__gte=start)
    disposition_days = {
        row["day"]: row
        for row in dispositions.annotate(day=TruncDate("created_at"))
        .values("day")
        .annotate(decisions=Count("id"), applied=Count("id", filter=applied))
        .order_by("day")
    }
    disposition_total = dispositions.aggregate(decisions=Count("id"), applied=Count("id", filter=applied))

    reviews = ReviewItem.objects.filter(
        kind=ReviewItem.Kind.DELAYED_REVIEW, status=ReviewItem.Status.DONE, decided_at__gte=start
    )
    review_days = {
        row["day"]: row
        for row in reviews.annotate(day=TruncDate("decided_at"))
        .values("day")
        .annotate(**_review_aggregates())
        .order_by("day")
    }
    review_total = reviews.aggregate(**_review_aggregates())

    day_list = [first_day + timedelta(days=i) for i in range(days)]
    backlog = _open_at_end_of(day_list, now=now)
    empty_tickets = {key: 0 for key in ("created", "escalated", "sla_met", "responded", "resolved")}
    series = []
    for day in day_list:
        t = ticket_days.get(day, {**empty_tickets, "first_response": None, "resolution": None})
        d = disposition_days.get(day, {"decisions": 0, "applied": 0})
        series.append(
            {
                "day": day,
                **_ticket_figures(t),
                "open_at_end": backlog[day],
                "decisions": d["decisions"],
                "autonomous": d["applied"],
                "automation_rate": _share(d["applied"], d["decisions"]),
                "autonomous_accuracy": _accuracy(review_days.get(day, {})),
            }
        )
    return {
        "days": days,
        "start": first_day,
        "today": today,
        "now": {
            "tickets_today": Ticket.objects.filter(created_at__gte=start_today).count(),
            "open": Ticket.objects.exclude(status__in=CLOSED).count(),
            "escalated": Ticket.objects.filter(status=Ticket.Status.ESCALATED).count(),
        },
        "period": {
            **_ticket_figures(ticket_total),
            "decisions": disposition_total["decisions"],
            "autonomous": disposition_total["applied"],
            "automation_rate": _share(disposition_total["applied"], disposition_total["decisions"]),
            "autonomous_accuracy": _accuracy(review_total),
        },
        "series": series,
    }


def _open_at_end_of(day_list: list, *, now) -> dict:
    """Tickets created and not yet resolved at the end of each day: one query, a filtered
    count per day."""
    ends = {
        day: min(now, timezone.make_aware(datetime.combine(day + timedelta(days=1), time.min)))
        for day in day_list
    }
    start = timezone.make_aware(datetime.combine(day_list[0], time.min))
    candidates = Ticket.objects.filter(Q(resolved_at__isnull=True) | Q(resolved_at__gte=start))
    counts = candidates.aggregate(
        **{
            f"d{i}": Count(
                "id", filter=Q(created_at__lt=end) & (Q(resolved_at__isnull=True) | Q(resolved_at__gte=end))
            )
            for i, end in enumerate(ends.values())
        }
    )
    return {day: counts[f"d{i}"] for i, day in enumerate(ends)}


def dashboard_rows(report: dict) -> list[dict]:
    """The by-day series, flat, for CSV."""
    rows = []
    for row in report["series"]:
        accuracy = row["autonomous_accuracy"]
        rows.append(
            {
                "day": row["day"].isoformat(),
                "tickets": row["tickets"],
                "open_at_end_of_day": row["open_at_end"],
                "escalated": row["escalated"],
                "escalation_rate": row["escalation_rate"],
                "sla_compliance": row["sla_compliance"],
                "avg_first_response_hours": row["first_response_hours"],
                "avg_resolution_hours": row["resolution_hours"],
                "decisions": row["decisions"],
                "autonomous": row["autonomous"],
                "automation_rate": row["automation_rate"],
                "autonomous_accuracy": accuracy["value"],
                "autonomous_accuracy_low": accuracy["low"],
                "autonomous_accuracy_high": accuracy["high"],
                "autonomous_accuracy_n": accuracy["n"],
            }
        )
    return rows

"""The quality monitor: what is wrong with a decision type's decisions, the alerts that say
so, the demotions they make or propose, and the proposals to promote."""

import logging
from dataclasses import dataclass

import numpy as np
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from agents.ml import expected_calibration_error
from autonomy import selectors
from autonomy.calibration import OTHER, confidence_histogram, label_mix, population_stability
from autonomy.models import Alert, AutomationPolicy, ReviewItem
from autonomy.services.controller import policy_for
from autonomy.services.notify import supervisors_notify
from autonomy.services.transitions import policy_demote, promotion_proposals_close
from csai.errors import ApplicationError
from events.models import EventType
from events.services import event_emit
from outcomes.stats import ScoreSummary, mean_difference
from tickets.models import Ticket

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Finding:
    type: str
    severity: str
    metric: str
    value: float
    threshold: float
    samples: int
    recommendation: str


def _findings(policy: AutomationPolicy, bounds: dict) -> list[Finding]:
    """What is wrong with a policy's decisions right now (reads only)."""
    decision_type = policy.decision_type
    since = selectors.phase_started_at(policy=policy)
    found = []
    if policy.current_phase.applies_automatically:
        accuracy = selectors.autonomous_accuracy(
            decision_type=decision_type, since=since, last=bounds["accuracy_window"]
        )
        counts = selectors.disposition_counts(
            decision_type=decision_type, since=since, last=bounds["rate_window"]
        )
        decided = sum(counts.values())
        rate = sum(counts.get(k, 0) for k in selectors.APPLIED) / decided if decided else 0.0
        if accuracy.n >= bounds["min_reviewed"]:
            if rate > bounds["overautomation_rate"] and accuracy.value < bounds["overautomation_accuracy"]:
                found.append(
                    Finding(
                        Alert.Type.OVERAUTOMATION_RISK, Alert.Severity.CRITICAL, "autonomous_accuracy",
                        accuracy.value, bounds["overautomation_accuracy"], accuracy.n,
                        f"{rate:.0%} of decisions are applied automatically but only {accuracy.value:.0%} "
                        f"of the sampled ones were right: autonomy is switched off until this is understood.",
                    )
                )  # fmt: skip
            elif accuracy.value < bounds["accuracy_floor"]:
                found.append(
                    Finding(
                        Alert.Type.ACCURACY_DEGRADATION, Alert.Severity.HIGH, "autonomous_accuracy",
                        accuracy.value, bounds["accuracy_floor"], accuracy.n,
                        f"Reviewed autonomous decisions are {accuracy.value:.0%} right "
                        f"(95% interval {accuracy.low:.0%}–{accuracy.high:.0%}): demote and retrain.",
                    )
                )  # fmt: skip
        found += _drift_findings(policy, bounds)
        found += _csat_findings(policy, bounds)
    found += _calibration_findings(policy, bounds)
    found += _override_findings(policy, bounds)
    return found


def _drift_findings(policy: AutomationPolicy, bounds: dict) -> list[Finding]:
    """Input drift: the latest decisions of the calibrated model against what the
    calibration was fitted on (raw confidence histogram and label mix)."""
    calibration = policy.calibration
    if calibration is None or not calibration.reference or calibration.samples < bounds["rate_window"]:
        return []  # too small a reference: every comparison would look like drift
    reference = calibration.reference
    rows = selectors.recent_predictions(
        decision_type=policy.decision_type,
        model_version_id=calibration.model_version_id,
        last=bounds["rate_window"],
    )
    if len(rows) < bounds["rate_window"]:
        return []
    expected = reference["labels"]  # a jsonb object: key order is not kept, so match by key
    recent = label_mix([r[1] for r in rows], keep=[label for label in expected if label != OTHER])
    psi = max(
        population_stability(reference["confidence"], confidence_histogram([r[0] for r in rows])),
        population_stability([expected[k] for k in recent], [recent[k] for k in recent]),
    )
    if psi <= bounds["psi_bound"]:
        return []
    return [
        Finding(
            Alert.Type.INPUT_DRIFT, Alert.Severity.HIGH, "population_stability", psi, bounds["psi_bound"],
            len(rows),
            "Recent tickets no longer look like those the calibration was fitted on (confidence or "
            "label mix moved): its evidence may not hold. Demote until retrained and recalibrated.",
        )
    ]  # fmt: skip


def _scores_summary(scores: list[int]) -> ScoreSummary:
    return ScoreSummary.from_sums(n=len(scores), total=sum(scores), squares=sum(s * s for s in scores))


def _csat_findings(policy: AutomationPolicy, bounds: dict) -> list[Finding]:
    """A drop in how customers rate what the AI resolved: the latest answers against the
    ones before them. Only for a decision type that answers customers on its own, while it
    does (phases 3–5): below that nothing new is AI-resolved, and the old window would
    raise the same alert again after every acknowledgement."""
    if not selectors.answers_to_customers(policy.decision_type):
        return []
    recent, baseline = bounds["csat_recent"], bounds["csat_baseline"]
    scores = selectors.recent_csat_scores(resolved_by=Ticket.Resolver.AI, last=recent + baseline)
    if len(scores) < recent + baseline // 2:
        return []
    now, before = _scores_summary(scores[:recent]), _scores_summary(scores[recent:])
    difference = mean_difference(now, before)
    if difference.high is None or difference.high >= -bounds["csat_drop"]:
        return []
    return [
        Finding(
            Alert.Type.CSAT_DROP, Alert.Severity.HIGH, "csat_difference", difference.value,
            -bounds["csat_drop"], now.n,
            f"Customers rated the latest {now.n} AI-resolved tickets {now.mean:.2f} on average against "
            f"{before.mean:.2f} for the {before.n} before (difference {difference.value:+.2f}, 95% interval "
            f"{difference.low:+.2f} to {difference.high:+.2f}): read their comments, and demote until "
            "the cause is understood.",
        )
    ]  # fmt: skip


def _calibration_findings(policy: AutomationPolicy, bounds: dict) -> list[Finding]:
    """Calibration drift: calibrated confidence of recent reviewed decisions vs their outcomes."""
    if policy.calibration is None:
        return []
    reviewed = selectors.reviewed_decisions(
        decision_type=policy.decision_type,
        model_version_id=policy.calibration.model_version_id,
        limit=bounds["ece_window"],
    )
    known = ~np.isnan(reviewed.calibrated)
    if known.sum() < bounds["ece_window"] // 2:
        return []
    ece = expected_calibration_error(reviewed.calibrated[known], reviewed.correct[known].astype(float))
    if ece <= bounds["ece_bound"]:
        return []
    return [
        Finding(
            Alert.Type.CALIBRATION_DRIFT, Alert.Severity.HIGH, "ece", ece, bounds["ece_bound"],
            int(known.sum()),
            "Calibrated confidence no longer matches how often decisions are right: refit the calibration.",
        )
    ]  # fmt: skip


def _override_findings(policy: AutomationPolicy, bounds: dict) -> list[Finding]:
    """A jump in how often reviewers override, latest reviews against the ones before."""
    recent, baseline = bounds["override_recent"], bounds["override_baseline"]
    # Within the current phase only: a promotion changes which decisions people see (the
    # hard ones and a sample), and that is no spike.
    outcomes = selectors.recent_review_outcomes(
        decision_type=policy.decision_type,
        since=selectors.phase_started_at(policy=policy),
        last=recent + baseline,
    )
    if len(outcomes) < recent + baseline // 2:
        return []
    overridden = [o == ReviewItem.Outcome.OVERRIDDEN for o in outcomes]
    now, before = float(np.mean(overridden[:recent])), float(np.mean(overridden[recent:]))
    if not (now > before + bounds["override_jump"] and now > 2 * before):
        return []
    return [
        Finding(
            Alert.Type.OVERRIDE_SPIKE, Alert.Severity.HIGH, "override_rate", now,
            before + bounds["override_jump"], recent,
            f"Reviewers overrode {now:.0%} of the latest decisions against {before:.0%} before.",
        )
    ]  # fmt: skip


def quality_check(*, decision_type: str) -> list[Alert]:
    """Run the monitor on one decision type: raise (or refresh) alerts, act on them.

    A critical alert demotes an autonomous policy to the safe phase at once and tells the
    supervisors; a high one proposes that demotion to them. One open alert per type: a
    problem that persists refreshes its alert instead of adding copies.
    """
    bounds = settings.CSAI_MONITOR
    policy = policy_for(decision_type)
    raised = []
    for finding in _findings(policy, bounds):
        alert, created = _alert_upsert(policy, finding)
        proposed = bounds["safe_phase"] if policy.phase > bounds["safe_phase"] else None
        if finding.severity == Alert.Severity.CRITICAL and proposed is not None:
            transition = policy_demote(
                policy=policy,
                actor=None,
                to_phase=proposed,
                reason=f"{finding.type}: {finding.recommendation}",
            )
            Alert.objects.filter(pk=alert.pk).update(demotion=transition, proposed_phase=proposed)
            policy.refresh_from_db()
        elif proposed is not None:
            Alert.objects.filter(pk=alert.pk).update(proposed_phase=proposed)
        alert.refresh_from_db()  # the email names the proposed phase
        if created:
            supervisors_notify(alert=alert)
        raised.append(alert)
    return raised


def promotion_propose(*, decision_type: str) -> Alert | None:
    """Tell the supervisors when a decision type meets every criterion of its next phase.

    The system proposes, a supervisor promotes. One open proposal per decision type: it is
    refreshed while the evidence holds, closed when it no longer does, and closed by any
    phase change. None when the decision type is not ready.
    """
    policy = policy_for(decision_type)
    readiness = selectors.policy_readiness(policy=policy)
    if not readiness.ready:
        promotion_proposals_close(policy=policy, note=f"No longer ready: {'; '.join(readiness.blockers)}.")
        return None
    metric, value = readiness.accuracy
    to_phase = policy.current_phase.next
    finding = Finding(
        type=Alert.Type.PROMOTION_READY,
        severity=Alert.Severity.INFO,
        metric=metric,
        value=value,
        threshold=readiness.criteria.get("min_accuracy", 0.0),
        samples=readiness.reviewed,
        recommendation=(
            f"Meets every criterion of phase {int(to_phase)} ({to_phase.label}). "
            "A supervisor may promote it, with a reason, on the autonomy page."
        ),
    )
    alert, created = _alert_upsert(policy, finding)
    Alert.objects.filter(pk=alert.pk).update(proposed_phase=to_phase)
    alert.refresh_from_db()
    if created:
        supervisors_notify(alert=alert)
    return alert


def _alert_upsert(policy: AutomationPolicy, finding: Finding) -> tuple[Alert, bool]:
    values = {
        "severity": finding.severity,
        "metric": finding.metric,
        "value": round(float(finding.value), 4),
        "threshold": finding.threshold,
        "samples": finding.samples,
        "recommendation": finding.recommendation,
    }
    with transaction.atomic():
        alert = (
            Alert.objects.select_for_update()
            .filter(decision_type=policy.decision_type, type=finding.type, acknowledged_at__isnull=True)
            .first()
        )
        if alert is not None:
            Alert.objects.filter(pk=alert.pk).update(**values)
            return alert, False
        alert = Alert.objects.create(
            decision_type=policy.decision_type, type=finding.type, created_at=timezone.now(), **values
        )
        event_emit(
            type=EventType.ALERT_RAISED,
            subject=("alert", alert.pk),
            payload={
                "alert_id": alert.pk,
                "decision_type": alert.decision_type,
                "type": alert.type,
                "severity": alert.severity,
                "metric": alert.metric,
                "value": values["value"],
                "threshold": alert.threshold,
                "recommendation": alert.recommendation,
                "created_at": alert.created_at,
            },
        )
    logger.warning(
        "quality alert",
        extra={"decision_type": policy.decision_type, "alert": finding.type, "severity": finding.severity},
    )
    return alert, True


def alert_acknowledge(*, alert: Alert, actor, note: str = "") -> bool:
    """A person has seen the alert; False when somebody already acknowledged it."""
    if not actor.has_perm("autonomy.acknowledge_alert"):
        raise ApplicationError("Only supervisors acknowledge alerts.", status_code=403)
    updated = Alert.objects.filter(pk=alert.pk, acknowledged_at__isnull=True).update(
        acknowledged_at=timezone.now(), acknowledged_by=actor, note=note.strip()
    )
    return updated == 1

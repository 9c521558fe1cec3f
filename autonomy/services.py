"""The autonomy controller: the one place an agent decision is applied or sent to a person."""

import hashlib
import logging
from dataclasses import dataclass

import numpy as np
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from agents.ml import brier, expected_calibration_error, reliability_bins
from agents.models import AgentDecision, DecisionType, HumanLabel, ModelVersion
from agents.proposers import ESCALATION_PATHS, NO_ESCALATION
from agents.providers import active_model
from agents.services import (
    human_label_record,
    model_activate,
    model_candidate,
)
from autonomy import selectors
from autonomy.calibration import (
    OTHER,
    Calibration,
    calibration_fit,
    confidence_histogram,
    label_mix,
    population_stability,
    threshold_select,
    thresholds_per_class,
)
from autonomy.models import (
    PHASE_NAMES,
    Alert,
    AutomationPolicy,
    CalibrationVersion,
    Disposition,
    PhaseTransition,
    ReviewItem,
    RollbackPoint,
)
from csai.errors import ApplicationError
from tickets.models import Message, Ticket
from tickets.roles import SUPERVISOR
from tickets.services import message_post, ticket_escalate, ticket_triage_set

logger = logging.getLogger(__name__)

AI_SENDER = "csai-agents"
User = get_user_model()
# Fewer held-out reviewed tickets than this: a candidate model cannot be judged.
MIN_HELD_OUT = 50


def policy_for(decision_type: str) -> AutomationPolicy:
    """The decision type's policy; a type nobody configured yet starts in phase 1."""
    policy, _ = AutomationPolicy.objects.select_related("calibration").get_or_create(
        decision_type=decision_type
    )
    return policy


def _sampled(decision_id: int, rate: float) -> bool:
    """A stable draw per decision, so deciding again never changes the answer."""
    if rate >= 1:
        return True
    digest = hashlib.sha256(f"review-sample:{decision_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < rate


def _to_a_person(decision: AgentDecision, policy: AutomationPolicy, calibrated: float | None) -> str:
    """Why this decision may not be applied automatically; empty when it may."""
    if decision.guardrail_violations:
        return "blocked by guardrails"
    if decision.out_of_scope or not decision.label:
        return "out of scope"
    if policy.calibration is None or calibrated is None:
        return "no calibration yet"
    fitted_for = policy.calibration.model_version_id
    if fitted_for is not None and fitted_for != decision.model_version_id:
        return "the calibration was fitted for another model version"
    threshold = policy.threshold_for(decision.label)
    if threshold is None:
        return "no threshold: the reviewed decisions do not show the target precision (yet)"
    if calibrated < threshold:
        return f"calibrated confidence {calibrated:.2f} below threshold {threshold:.2f}"
    return ""


def decision_submit(*, decision_id: int) -> str:
    """Calibrate a recorded decision, then apply it or queue it for a person, once.

    Holds the decision row locked, so a second delivery finds the disposition and does
    nothing; applying and recording the disposition share one transaction.
    """
    with transaction.atomic():
        decision = AgentDecision.objects.select_for_update().filter(pk=decision_id).first()
        if decision is None:
            return "missing"
        if Disposition.objects.filter(decision=decision).exists():
            return "already-disposed"
        policy = policy_for(decision.decision_type)
        calibrated = None
        if policy.calibration is not None:
            calibration = Calibration.from_dict(policy.calibration.params)
            calibrated = float(calibration.apply([decision.raw_confidence])[0])
            decision.calibrated_confidence = calibrated
            decision.save(update_fields=["calibrated_confidence"])
        reason = _to_a_person(decision, policy, calibrated)
        confidence = calibrated if calibrated is not None else decision.raw_confidence
        if policy.phase <= 2:
            kind = Disposition.Kind.SHADOW if policy.phase == 1 else Disposition.Kind.SUGGESTED
            _queue(decision, kind=ReviewItem.Kind.DECIDE, show=policy.phase == 2, confidence=confidence)
        elif reason:
            kind = Disposition.Kind.QUEUED_FOR_REVIEW
            _queue(decision, kind=ReviewItem.Kind.DECIDE, show=True, confidence=confidence)
        else:
            decision_apply(decision=decision)
            rate = policy.review_rate()
            if _sampled(decision.pk, rate):
                kind = Disposition.Kind.AUTO_APPLIED_WITH_REVIEW
                _queue(
                    decision, kind=ReviewItem.Kind.DELAYED_REVIEW, show=True, confidence=confidence, rate=rate
                )
            else:
                kind = Disposition.Kind.AUTO_APPLIED
        Disposition.objects.create(
            decision=decision,
            kind=kind,
            phase=policy.phase,
            threshold=policy.threshold_for(decision.label) if decision.label else None,
            reason=reason,
            applied=kind in (Disposition.Kind.AUTO_APPLIED, Disposition.Kind.AUTO_APPLIED_WITH_REVIEW),
            created_at=timezone.now(),
        )
    logger.info(
        "decision disposed", extra={"decision_id": decision_id, "disposition": kind, "phase": policy.phase}
    )
    return kind


def _queue(
    decision: AgentDecision, *, kind: str, show: bool, confidence: float, rate: float = 1.0
) -> ReviewItem:
    return ReviewItem.objects.create(
        decision=decision,
        ticket_id=decision.ticket_id,
        decision_type=decision.decision_type,
        kind=kind,
        show_suggestion=show,
        uncertainty=round(1.0 - confidence, 4),
        sampling_rate=rate,
        created_at=timezone.now(),
    )


def _value_for(decision: AgentDecision, label: str, ticket: Ticket) -> dict:
    """The decision's value with a person's label in place of the agent's."""
    if decision.decision_type == DecisionType.ESCALATION:
        if label == NO_ESCALATION:
            return {"escalate": False, "path": None, "level": None, "to": None, "urgency": ticket.priority}
        return {
            "escalate": True,
            "path": label,
            "level": 0,
            "to": ESCALATION_PATHS[label][0],
            "urgency": ticket.priority,
        }
    return {**decision.value, decision.decision_type: label}


def decision_apply(*, decision: AgentDecision, value: dict | None = None, sender_id: str = AI_SENDER) -> None:
    """Carry a decision (or a person's version of it) out on its ticket.

    Call inside a transaction; the ticket row is locked here.
    """
    value = decision.value if value is None else value
    ticket = Ticket.objects.select_for_update().select_related("customer").get(pk=decision.ticket_id)
    match decision.decision_type:
        case DecisionType.CATEGORY:
            ticket_triage_set(ticket=ticket, category=value["category"])
        case DecisionType.PRIORITY:
            ticket_triage_set(ticket=ticket, priority=value["priority"])
        case DecisionType.ESCALATION if value.get("escalate"):
            note = f"Escalated to {value['to']} ({value['path']} path), urgency {value['urgency']}."
            ticket_escalate(ticket=ticket, team=value["path"], note=note, sender_id=sender_id)
        case DecisionType.REPLY:
            message_post(
                ticket=ticket,
                kind=Message.Kind.EXTERNAL,
                sender_kind=Message.SenderKind.AI_AGENT,
                sender_id=sender_id,
                content=value["reply"],
            )
            if value.get("internal_note"):
                message_post(
                    ticket=ticket,
                    kind=Message.Kind.INTERNAL,
                    sender_kind=Message.SenderKind.AI_AGENT,
                    sender_id=sender_id,
                    content=value["internal_note"],
                )
        # A strategy shapes the reply and the escalation; it changes nothing on the ticket.


def review_item_decide(*, item: ReviewItem, actor, label: str, seconds: float | None = None) -> str:
    """A person's answer to a review item: confirm the agent's label or give another.

    For an item to decide, the person's answer is applied; for a delayed review of an
    applied decision, a correction is applied. The answer becomes training data. Returns
    the outcome; raises ``ValueError`` if the item was already decided.
    """
    with transaction.atomic():
        updated = ReviewItem.objects.filter(pk=item.pk, status=ReviewItem.Status.PENDING).update(
            status=ReviewItem.Status.DONE, decided_at=timezone.now(), decided_by=actor
        )
        if not updated:
            raise ValueError("this review item was already decided")
        decision = item.decision
        outcome = ReviewItem.Outcome.CONFIRMED if label == decision.label else ReviewItem.Outcome.OVERRIDDEN
        ReviewItem.objects.filter(pk=item.pk).update(
            outcome=outcome, human_label=label, seconds_to_decide=seconds
        )
        ticket = Ticket.objects.get(pk=decision.ticket_id)
        if decision.decision_type == DecisionType.REPLY:
            # Confirming a draft sends it; editing one is the console's job (guardrails again).
            approved = outcome == ReviewItem.Outcome.CONFIRMED and not decision.guardrail_violations
            if item.kind == ReviewItem.Kind.DECIDE and approved:
                decision_apply(decision=decision, sender_id=str(actor.pk))
        else:
            if item.kind == ReviewItem.Kind.DECIDE or outcome == ReviewItem.Outcome.OVERRIDDEN:
                value = _value_for(decision, label, ticket)
                decision_apply(decision=decision, value=value, sender_id=str(actor.pk))
            human_label_record(
                ticket=ticket,
                decision_type=decision.decision_type,
                value=label,
                source=HumanLabel.Source.REVIEW,
                actor=actor,
            )
    return outcome


# --- phase transitions and rollback ---------------------------------------------------

PHASE_PERMISSION = "autonomy.change_phase"
RESTORED_FIELDS = [
    "phase",
    "criticality",
    "target_precision",
    "min_samples",
    "review_rate_phase3",
    "review_rate_phase4",
    "review_rate_phase5",
    "threshold",
    "class_thresholds",
    "criteria",
]


def _transition(
    *, policy: AutomationPolicy, to_phase: int, direction: str, actor, reason: str
) -> PhaseTransition:
    """Record the way back, then move; the caller holds the policy row locked."""
    if actor is not None and not actor.has_perm(PHASE_PERMISSION):
        raise ApplicationError("Only supervisors change automation phases.", status_code=403)
    if not reason or not reason.strip():
        raise ApplicationError("A reason is required.")
    now = timezone.now()
    point = RollbackPoint.objects.create(
        policy=policy, snapshot=selectors.policy_snapshot(policy=policy), created_by=actor, created_at=now
    )
    transition = PhaseTransition.objects.create(
        policy=policy,
        direction=direction,
        from_phase=policy.phase,
        to_phase=to_phase,
        actor=actor,
        reason=reason.strip(),
        metrics=selectors.policy_metrics(decision_type=policy.decision_type),
        rollback_point=point,
        created_at=now,
    )
    _proposals_close(policy, note=f"Closed by the move to phase {to_phase}.", actor=actor)
    logger.warning(
        "automation phase changed",
        extra={
            "decision_type": policy.decision_type,
            "direction": direction,
            "from_phase": policy.phase,
            "to_phase": to_phase,
            "actor": getattr(actor, "username", "system"),
        },
    )
    return transition


def _locked(policy: AutomationPolicy) -> AutomationPolicy:
    return AutomationPolicy.objects.select_for_update().get(pk=policy.pk)


def policy_promote(*, policy: AutomationPolicy, actor, reason: str) -> PhaseTransition:
    """One phase up, never more at a time."""
    with transaction.atomic():
        policy = _locked(policy)
        if policy.phase >= 5:
            raise ApplicationError("Phase 5 is the highest phase.")
        transition = _transition(
            policy=policy,
            to_phase=policy.phase + 1,
            direction=PhaseTransition.Direction.PROMOTE,
            actor=actor,
            reason=reason,
        )
        policy.phase += 1
        policy.save(update_fields=["phase", "updated_at"])
    return transition


def policy_demote(
    *, policy: AutomationPolicy, actor, reason: str, to_phase: int | None = None
) -> PhaseTransition:
    """Down to any lower phase (default: one down). ``actor`` None: the system itself."""
    with transaction.atomic():
        policy = _locked(policy)
        to_phase = policy.phase - 1 if to_phase is None else to_phase
        if not 1 <= to_phase < policy.phase:
            raise ApplicationError(
                f"Phase {policy.phase} can only be demoted to a phase from 1 to {policy.phase - 1}."
            )
        transition = _transition(
            policy=policy,
            to_phase=to_phase,
            direction=PhaseTransition.Direction.DEMOTE,
            actor=actor,
            reason=reason,
        )
        policy.phase = to_phase
        policy.save(update_fields=["phase", "updated_at"])
    return transition


def rollback_restore(*, point: RollbackPoint, actor, reason: str) -> PhaseTransition:
    """Return a policy to a rollback point: its settings, calibration, thresholds and model."""
    with transaction.atomic():
        policy = _locked(point.policy)
        snapshot = point.snapshot
        transition = _transition(
            policy=policy,
            to_phase=snapshot["phase"],
            direction=PhaseTransition.Direction.ROLLBACK,
            actor=actor,
            reason=reason,
        )
        for field in RESTORED_FIELDS:
            if field in snapshot:  # points taken before a field existed keep today's value
                setattr(policy, field, snapshot[field])
        policy.calibration_id = snapshot["calibration_id"]
        policy.save(update_fields=[*RESTORED_FIELDS, "calibration", "updated_at"])
        model = ModelVersion.objects.filter(pk=snapshot.get("model_version_id")).first()
        if model is not None:
            model_activate(version=model)
    return transition


# --- calibration and learning ------------------------------------------------------------


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
        policy = _locked(policy_for(decision_type))
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


def _review_weights(*, decision_type: str, ticket_ids: list[int]) -> np.ndarray:
    """1 / sampling rate of the review that labelled each ticket (1 for decided items)."""
    rates = dict(
        ReviewItem.objects.filter(
            decision_type=decision_type, ticket_id__in=ticket_ids, status=ReviewItem.Status.DONE
        ).values_list("ticket_id", "sampling_rate")
    )
    return np.array([1.0 / max(rates.get(t, 1.0), 1e-6) for t in ticket_ids], dtype=float)


def model_retrain(*, decision_type: str, tolerance: float = 0.0) -> dict:
    """Train a candidate on the confirmed outcomes and promote it only if it is not worse.

    Candidate and current model are both judged on the held-out fifth of reviewed tickets
    (weighted back to the population), which neither was trained on. A promoted candidate
    gets its calibration and thresholds from those held-out predictions at once, so the
    controller never applies a new model's decisions on an old model's calibration.
    """
    trained = model_candidate(decision_type=decision_type)
    if trained is None:
        return {"status": "too-few-labels"}
    candidate, held, predictions = trained.version, trained.held, trained.predictions
    current = active_model(decision_type)
    if len(held.texts) < MIN_HELD_OUT:
        # Nothing to judge on yet. A first model is better than none; a model in use, with a
        # calibration its decisions have earned, is not swapped for an unjudged one.
        if current is not None:
            return {"status": "kept-unjudged", "version": candidate.version}
        model_activate(version=candidate)
        return {"status": "promoted-unjudged", "version": candidate.version}
    weights = _review_weights(decision_type=decision_type, ticket_ids=held.ticket_ids)
    truth = np.asarray(held.labels)
    labels = np.asarray([p.label for p in predictions])
    candidate_accuracy = float(np.average(labels == truth, weights=weights))
    current_accuracy = None
    if current is not None:
        current_labels = np.asarray([p.label for p in current.classifier.predict_many(held.texts)])
        current_accuracy = float(np.average(current_labels == truth, weights=weights))
    result = {
        "version": candidate.version,
        "held_out": len(held.texts),
        "candidate_accuracy": round(candidate_accuracy, 4),
        "current_accuracy": None if current_accuracy is None else round(current_accuracy, 4),
    }
    if current_accuracy is not None and candidate_accuracy < current_accuracy - tolerance:
        logger.info("candidate model rejected", extra={"decision_type": decision_type, **result})
        return {"status": "rejected", **result}
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
    logger.info("candidate model promoted", extra={"decision_type": decision_type, **result})
    return {"status": "promoted", **result}


# --- quality monitor ---------------------------------------------------------------------

# Bounds of the quality monitor (SPEC "Quality monitor"); settings.CSAI_MONITOR overrides any.
MONITOR_DEFAULTS = {
    "accuracy_window": 100,  # latest reviewed autonomous decisions the accuracy is measured on
    "min_reviewed": 30,  # fewer than this: no accuracy alert (too noisy)
    "accuracy_floor": 0.85,  # ACCURACY_DEGRADATION below (high)
    "overautomation_rate": 0.9,  # OVERAUTOMATION_RISK above this autonomous rate …
    "overautomation_accuracy": 0.9,  # … with accuracy below this (critical)
    "rate_window": 200,  # latest decisions the autonomous rate and input drift are measured on
    # INPUT_DRIFT above this population stability index. 0.25 is the textbook "large shift",
    # but a 200-decision window against a few hundred reference rows over ~12 buckets is
    # noisy enough to cross it by chance (seen in simulate); a real change of input crosses 1.
    "psi_bound": 0.5,
    "ece_window": 500,
    "ece_bound": 0.10,  # CALIBRATION_DRIFT above
    "override_recent": 100,  # OVERRIDE_SPIKE: override rate of the latest reviews …
    "override_baseline": 500,  # … against the reviews before them
    "override_jump": 0.15,  # alert when recent > baseline + jump and > 2 × baseline
    "safe_phase": 2,  # where a demotion takes an autonomous policy: people decide again
}


def monitor_settings() -> dict:
    return {**MONITOR_DEFAULTS, **getattr(settings, "CSAI_MONITOR", {})}


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
    if policy.phase >= 3:
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
    rows = list(
        AgentDecision.objects.filter(
            decision_type=policy.decision_type, model_version_id=calibration.model_version_id
        )
        .order_by("-id")
        .values_list("raw_confidence", "label")[: bounds["rate_window"]]
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
    items = ReviewItem.objects.filter(decision_type=policy.decision_type, status=ReviewItem.Status.DONE)
    since = selectors.phase_started_at(policy=policy)
    if since is not None:
        items = items.filter(created_at__gte=since)
    outcomes = list(
        items.order_by("-decided_at", "-id").values_list("outcome", flat=True)[: recent + baseline]
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
    bounds = monitor_settings()
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
            _notify_supervisors(alert)
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
    if not readiness["ready"]:
        _proposals_close(policy, note=f"No longer ready: {'; '.join(readiness['blockers'])}.")
        return None
    metric, value = {
        1: ("shadow_accuracy", readiness["agreement_rate"]),
        2: ("projected_accuracy", readiness["projected_accuracy"]["value"]),
    }.get(policy.phase, ("autonomous_accuracy", readiness["autonomous_accuracy"]["value"]))
    to_phase = policy.phase + 1
    finding = Finding(
        type=Alert.Type.PROMOTION_READY,
        severity=Alert.Severity.INFO,
        metric=metric,
        value=value,
        threshold=readiness["criteria"].get("min_accuracy", 0.0),
        samples=readiness["reviewed"],
        recommendation=(
            f"Meets every criterion of phase {to_phase} ({PHASE_NAMES[to_phase]}). "
            "A supervisor may promote it, with a reason, on the autonomy page."
        ),
    )
    alert, created = _alert_upsert(policy, finding)
    Alert.objects.filter(pk=alert.pk).update(proposed_phase=to_phase)
    alert.refresh_from_db()
    if created:
        _notify_supervisors(alert)
    return alert


def _proposals_close(policy: AutomationPolicy, *, note: str, actor=None) -> None:
    Alert.objects.filter(
        decision_type=policy.decision_type, type=Alert.Type.PROMOTION_READY, acknowledged_at__isnull=True
    ).update(acknowledged_at=timezone.now(), acknowledged_by=actor, note=note)


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
    logger.warning(
        "quality alert",
        extra={"decision_type": policy.decision_type, "alert": finding.type, "severity": finding.severity},
    )
    return alert, True


def _notify_supervisors(alert: Alert) -> None:
    """Email every supervisor with an address; the alert itself is the in-app notice."""
    recipients = list(
        User.objects.filter(is_active=True, groups__name=SUPERVISOR)
        .exclude(email="")
        .values_list("email", flat=True)
        .distinct()
    )
    if not recipients:
        return
    subject = f"[CSAI] {alert.severity.upper()}: {alert.type} on {alert.decision_type}"
    body = (
        f"{alert.recommendation}\n\n"
        f"{alert.metric} = {alert.value:.3f} (bound {alert.threshold:.3f}, n = {alert.samples})."
    )
    if alert.proposed_phase:
        body += f"\nProposed phase: {alert.proposed_phase}."
    send_mail(subject, body, None, recipients, fail_silently=True)


def alert_acknowledge(*, alert: Alert, actor, note: str = "") -> bool:
    """A person has seen the alert; False when somebody already acknowledged it."""
    if not actor.has_perm("autonomy.acknowledge_alert"):
        raise ApplicationError("Only supervisors acknowledge alerts.", status_code=403)
    updated = Alert.objects.filter(pk=alert.pk, acknowledged_at__isnull=True).update(
        acknowledged_at=timezone.now(), acknowledged_by=actor, note=note.strip()
    )
    return updated == 1

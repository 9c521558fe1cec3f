"""The autonomy controller: the one place an agent decision is applied or sent to a person."""

import hashlib
import logging

from django.db import transaction
from django.utils import timezone

from agents.models import AgentDecision, DecisionType, HumanLabel, ModelVersion
from agents.proposers import ESCALATION_PATHS, NO_ESCALATION
from agents.services import human_label_record
from autonomy import selectors
from autonomy.calibration import Calibration
from autonomy.models import AutomationPolicy, Disposition, PhaseTransition, ReviewItem, RollbackPoint
from csai.errors import ApplicationError
from tickets.models import Message, Ticket
from tickets.services import message_post, ticket_escalate, ticket_triage_set

logger = logging.getLogger(__name__)

AI_SENDER = "csai-agents"


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
    threshold = policy.threshold_for(decision.label)
    if threshold is None:
        return "no threshold yet: too few reviewed decisions at the target precision"
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
            setattr(policy, field, snapshot[field])
        policy.calibration_id = snapshot["calibration_id"]
        policy.save(update_fields=[*RESTORED_FIELDS, "calibration", "updated_at"])
        model_id = snapshot.get("model_version_id")
        if model_id is not None:
            versions = ModelVersion.objects.filter(decision_type=policy.decision_type)
            versions.exclude(pk=model_id).filter(is_active=True).update(is_active=False)
            versions.filter(pk=model_id).update(is_active=True)
    return transition

"""Phase transitions: promote, demote and roll back a decision type's automation policy.

Every move records the way back (a rollback point) and the evidence it was made on.
"""

import logging

from django.db import transaction
from django.utils import timezone

from agents.models import ModelVersion
from agents.services import model_activate
from autonomy import selectors
from autonomy.models import Alert, AutomationPolicy, Phase, PhaseTransition, RollbackPoint
from csai.errors import ApplicationError
from events.models import EventType
from events.services import event_emit

logger = logging.getLogger(__name__)

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
    promotion_proposals_close(policy=policy, note=f"Closed by the move to phase {to_phase}.", actor=actor)
    event_emit(
        type=EventType.POLICY_PHASE_CHANGED,
        subject=("policy", policy.decision_type),
        payload={
            "decision_type": policy.decision_type,
            "from_phase": policy.phase,
            "to_phase": int(to_phase),
            "direction": direction,
            "actor": {"id": actor.pk, "username": actor.get_username()} if actor is not None else None,
            "reason": transition.reason,
            "changed_at": now,
        },
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


def policy_locked(policy: AutomationPolicy) -> AutomationPolicy:
    """The policy row, locked for the caller's transaction."""
    return AutomationPolicy.objects.select_for_update().get(pk=policy.pk)


def policy_promote(*, policy: AutomationPolicy, actor, reason: str) -> PhaseTransition:
    """One phase up, never more at a time."""
    with transaction.atomic():
        policy = policy_locked(policy)
        to_phase = policy.current_phase.next
        if to_phase is None:
            raise ApplicationError(f"Phase {Phase.FULL_AUTONOMY} is the highest phase.")
        transition = _transition(
            policy=policy,
            to_phase=to_phase,
            direction=PhaseTransition.Direction.PROMOTE,
            actor=actor,
            reason=reason,
        )
        policy.phase = to_phase
        policy.save(update_fields=["phase", "updated_at"])
    return transition


def policy_demote(
    *, policy: AutomationPolicy, actor, reason: str, to_phase: int | None = None
) -> PhaseTransition:
    """Down to any lower phase (default: one down). ``actor`` None: the system itself."""
    with transaction.atomic():
        policy = policy_locked(policy)
        to_phase = policy.phase - 1 if to_phase is None else to_phase
        if not Phase.FULL_OVERSIGHT <= to_phase < policy.phase:
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
        policy = policy_locked(point.policy)
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


def promotion_proposals_close(*, policy: AutomationPolicy, note: str, actor=None) -> None:
    """Close the open promotion proposal of the policy's decision type, if any."""
    Alert.objects.filter(
        decision_type=policy.decision_type, type=Alert.Type.PROMOTION_READY, acknowledged_at__isnull=True
    ).update(acknowledged_at=timezone.now(), acknowledged_by=actor, note=note)

"""The autonomy controller: the one place an agent decision is applied or sent to a person,
and the one place a person's answer to a review item is taken."""

import hashlib
import logging

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from agents import decision_types, guardrails
from agents.decision_types import ReplyAnswer
from agents.models import AgentDecision, HumanLabel
from agents.services import human_label_record
from autonomy.calibration import Calibration
from autonomy.models import CLAIM_TTL, AutomationPolicy, Disposition, ReviewItem
from csai.errors import ApplicationError
from tickets.models import Ticket

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
        phase = policy.current_phase
        calibrated = None
        if policy.calibration is not None:
            calibration = Calibration.from_dict(policy.calibration.params)
            calibrated = float(calibration.apply([decision.raw_confidence])[0])
            decision.calibrated_confidence = calibrated
            decision.save(update_fields=["calibrated_confidence"])
        reason = _to_a_person(decision, policy, calibrated)
        confidence = calibrated if calibrated is not None else decision.raw_confidence
        if not phase.applies_automatically:
            kind = Disposition.Kind.SUGGESTED if phase.shows_suggestion else Disposition.Kind.SHADOW
            _queue(decision, kind=ReviewItem.Kind.DECIDE, show=phase.shows_suggestion, confidence=confidence)
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


def decision_apply(*, decision: AgentDecision, value: dict | None = None, sender_id: str = AI_SENDER) -> None:
    """Carry a decision (or a person's version of it) out on its ticket, as its decision
    type's registered applier does it.

    Call inside a transaction; the ticket row is locked here.
    """
    ticket = Ticket.objects.select_for_update().select_related("customer").get(pk=decision.ticket_id)
    applier = decision_types.applier(decision.decision_type)
    applier(ticket=ticket, value=decision.value if value is None else value, sender_id=sender_id)


# --- a person's answer ---------------------------------------------------------------------


def outgoing_text_check(text: str) -> None:
    """Refuse an outgoing text that breaks a guardrail, saying which."""
    result = guardrails.check_text(
        text,
        max_length=settings.CSAI_GUARDRAIL_MAX_LENGTH,
        forbidden_phrases=settings.CSAI_GUARDRAIL_FORBIDDEN_PHRASES or guardrails.DEFAULT_FORBIDDEN_PHRASES,
    )
    if not result.ok:
        reasons = "; ".join(v.detail for v in result.violations)
        raise ApplicationError(f"Not sent, the text breaks a guardrail: {reasons}.", status_code=422)


def review_item_hold(*, item: ReviewItem, actor) -> ReviewItem:
    """The item row locked, if ``actor`` may answer it now: pending, and not held by another.

    Call inside a transaction. Raises ``ApplicationError`` (409) otherwise.
    """
    locked = ReviewItem.objects.select_for_update().select_related("decision").get(pk=item.pk)
    if locked.status != ReviewItem.Status.PENDING:
        raise ApplicationError("This item has already been decided.", status_code=409)
    now = timezone.now()
    if locked.claimed_by_id not in (None, actor.pk) and locked.claimed_until and locked.claimed_until > now:
        raise ApplicationError(f"{locked.claimed_by} is working on this item.", status_code=409)
    return locked


def _seconds_since_claim(item: ReviewItem, actor) -> float | None:
    if item.claimed_by_id != actor.pk or item.claimed_until is None:
        return None
    return round((timezone.now() - (item.claimed_until - CLAIM_TTL)).total_seconds(), 3)


def review_item_answer(
    *, item: ReviewItem, actor, label: str, reply: str | None = None, seconds: float | None = None
) -> str:
    """A person's answer to a review item: confirm the agent's label or give another.

    ``label`` is one of the decision type's labels; for a drafted text, ``draft`` sends the
    agent's draft, ``edited`` sends ``reply`` once the guardrails pass it and ``not_sent``
    sends nothing. For an item to decide, the answer is applied; for a delayed review of an
    applied decision, a correction is. A labelled answer becomes training data. The time to
    decide is ``seconds``, or else the time since ``actor`` claimed the item.

    Locks the item row. Returns the outcome (confirmed or overridden); raises
    ``ApplicationError`` for an answer the type does not have, a blocked text, or an item
    already decided (409) or held by someone else (409).
    """
    kind = decision_types.get(item.decision_type)
    if label not in kind.labels():
        raise ApplicationError(f"{label!r} is not an answer for {item.decision_type}.")
    edited = kind.drafts_text and label == ReplyAnswer.EDITED
    if edited:
        if not (reply or "").strip():
            raise ApplicationError("The edited reply is empty.")
        outgoing_text_check(reply)
    with transaction.atomic():
        locked = review_item_hold(item=item, actor=actor)
        decision = locked.decision
        blocked = bool(decision.guardrail_violations) or decision.label != ReplyAnswer.SENT
        if kind.drafts_text and label == ReplyAnswer.SENT and blocked:
            raise ApplicationError("This draft was blocked by the guardrails: edit it before sending.")
        outcome = ReviewItem.Outcome.CONFIRMED if label == decision.label else ReviewItem.Outcome.OVERRIDDEN
        ReviewItem.objects.filter(pk=locked.pk).update(
            status=ReviewItem.Status.DONE,
            decided_at=timezone.now(),
            decided_by=actor,
            outcome=outcome,
            human_label=label,
            seconds_to_decide=_seconds_since_claim(locked, actor) if seconds is None else seconds,
        )
        deciding = locked.kind == ReviewItem.Kind.DECIDE
        ticket = Ticket.objects.get(pk=decision.ticket_id)
        if kind.drafts_text:
            if deciding and label == ReplyAnswer.SENT:
                decision_apply(decision=decision, sender_id=str(actor.pk))
            elif deciding and edited:
                value = kind.value_with(decision.value, reply.strip(), ticket)
                decision_apply(decision=decision, value=value, sender_id=str(actor.pk))
            return outcome
        if deciding or outcome == ReviewItem.Outcome.OVERRIDDEN:
            value = kind.value_with(decision.value, label, ticket)
            decision_apply(decision=decision, value=value, sender_id=str(actor.pk))
        human_label_record(
            ticket=ticket,
            decision_type=decision.decision_type,
            value=label,
            source=HumanLabel.Source.REVIEW,
            actor=actor,
        )
    return outcome

"""The autonomy controller: the one place an agent decision is applied or sent to a person,
and the one place a person's answer to a review item is taken."""

import hashlib
import logging
from dataclasses import dataclass

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
from events.models import EventType
from events.services import event_emit
from tickets.models import Ticket

logger = logging.getLogger(__name__)


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
    if decision_types.get(decision.decision_type).drafts_text and decision.ticket.assignee_id:
        return f"{decision.ticket.assignee} owns this ticket: the AI only suggests"
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
        decision = (
            AgentDecision.objects.select_for_update(of=("self",))
            .select_related("ticket__assignee")
            .filter(pk=decision_id)
            .first()
        )
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
    """A review item for ``decision``; the same type's item still pending from an earlier
    turn of the ticket is closed: a person answers the latest turn."""
    ReviewItem.objects.filter(
        ticket_id=decision.ticket_id, decision_type=decision.decision_type, status=ReviewItem.Status.PENDING
    ).exclude(decision__run_id=decision.run_id).update(
        status=ReviewItem.Status.EXPIRED, claimed_by=None, claimed_until=None
    )
    item = ReviewItem.objects.create(
        decision=decision,
        ticket_id=decision.ticket_id,
        decision_type=decision.decision_type,
        kind=kind,
        show_suggestion=show,
        uncertainty=round(1.0 - confidence, 4),
        sampling_rate=rate,
        created_at=timezone.now(),
    )
    event_emit(
        type=EventType.REVIEW_CREATED,
        subject=("ticket", decision.ticket_id),
        payload={
            "review_item_id": item.pk,
            "ticket_id": decision.ticket_id,
            "decision_id": decision.pk,
            "decision_type": decision.decision_type,
            "kind": kind,
            "created_at": item.created_at,
        },
    )
    return item


def decision_apply(*, decision: AgentDecision, value: dict | None = None, actor=None) -> None:
    """Carry a decision (or a person's version of it, ``actor`` that person) out on its
    ticket, as its decision type's registered applier does it.

    Call inside a transaction; the ticket row is locked here.
    """
    ticket = Ticket.objects.select_for_update().select_related("customer").get(pk=decision.ticket_id)
    applier = decision_types.applier(decision.decision_type)
    applier(ticket=ticket, value=decision.value if value is None else value, actor=actor)


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
    with transaction.atomic():
        locked = review_item_hold(item=item, actor=actor)
        decision = locked.decision
        ticket = Ticket.objects.get(pk=decision.ticket_id)
        text = (reply or "").strip()
        if kind.drafts_text:
            label = _drafted_answer(kind, decision, ticket, label=label, text=text)
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
        if kind.drafts_text:
            if deciding and label == ReplyAnswer.SENT:
                decision_apply(decision=decision, actor=actor)
            elif deciding and label == ReplyAnswer.EDITED:
                value = kind.value_with(decision.value, text, ticket)
                decision_apply(decision=decision, value=value, actor=actor)
            return outcome
        if deciding or outcome == ReviewItem.Outcome.OVERRIDDEN:
            value = kind.value_with(decision.value, label, ticket)
            decision_apply(decision=decision, value=value, actor=actor)
        human_label_record(
            ticket=ticket,
            decision_type=decision.decision_type,
            value=label,
            source=HumanLabel.Source.REVIEW,
            actor=actor,
        )
    return outcome


def _drafted_answer(kind, decision: AgentDecision, ticket: Ticket, *, label: str, text: str) -> str:
    """The answer to a drafted text, checked: "draft" with a changed text is an edit; an
    edited text must be there and pass the guardrails; a blocked draft is never sent as is."""
    if label == ReplyAnswer.SENT and text and kind.value_with(decision.value, text, ticket) != decision.value:
        label = ReplyAnswer.EDITED
    if label == ReplyAnswer.EDITED:
        if not text:
            raise ApplicationError("The edited reply is empty.")
        outgoing_text_check(text)
    blocked = bool(decision.guardrail_violations) or decision.label != ReplyAnswer.SENT
    if label == ReplyAnswer.SENT and blocked:
        raise ApplicationError("This draft was blocked by the guardrails: edit it before sending.")
    return label


@dataclass(frozen=True)
class Answer:
    """A person's answer to one review item: a label, and for a drafted text the text sent."""

    label: str
    reply: str | None = None


def ticket_review_answer(*, ticket: Ticket, actor, answers: dict[int, Answer]) -> dict[int, str]:
    """A person's one pass over a ticket: an answer to every pending review item, applied
    together or not at all. Each decision keeps its own outcome, label and time to decide.

    Returns the outcome per item id; raises ``ApplicationError`` when an item is missing an
    answer (400), is not pending on this ticket (409), or any single answer is refused.
    """
    pending = list(
        ReviewItem.objects.filter(ticket=ticket, status=ReviewItem.Status.PENDING).order_by(
            "created_at", "id"
        )
    )
    if not pending:
        raise ApplicationError("Nothing on this ticket waits for an answer any more.", status_code=409)
    unanswered = [item.get_decision_type_display().lower() for item in pending if item.pk not in answers]
    if unanswered:
        raise ApplicationError(f"Answer every decision: {', '.join(unanswered)} still open.")
    if set(answers) - {item.pk for item in pending}:
        raise ApplicationError("Some answers are for decisions already answered: reload.", status_code=409)
    order = decision_types.names()
    pending.sort(
        key=lambda item: order.index(item.decision_type) if item.decision_type in order else len(order)
    )
    with transaction.atomic():
        return {
            item.pk: review_item_answer(
                item=item, actor=actor, label=answers[item.pk].label, reply=answers[item.pk].reply
            )
            for item in pending
        }


def draft_rate(*, item: ReviewItem, actor, rating: str) -> str:
    """The person who answered a phase-1 drafted text rates the hidden draft, now revealed:
    "fine" confirms the AI's draft, anything else overrides it. Once per item."""
    if rating not in ReviewItem.DraftRating.values:
        raise ApplicationError(f"{rating!r} is not a rating.")
    if not decision_types.get(item.decision_type).drafts_text or item.show_suggestion:
        raise ApplicationError("Only a draft that was hidden while you answered is rated.")
    outcome = (
        ReviewItem.Outcome.CONFIRMED
        if rating == ReviewItem.DraftRating.FINE
        else ReviewItem.Outcome.OVERRIDDEN
    )
    rated = ReviewItem.objects.filter(
        pk=item.pk, status=ReviewItem.Status.DONE, decided_by=actor, draft_rating=""
    ).update(draft_rating=rating, outcome=outcome)
    if not rated:
        raise ApplicationError("Only the person who answered rates the draft, once.", status_code=409)
    return outcome


def ticket_review_close(*, ticket: Ticket, why: str) -> int:
    """Close the ticket's pending review items unanswered (the ticket was escalated to a team
    or resolved: nobody should work them any more). Returns how many were closed."""
    closed = ReviewItem.objects.filter(ticket=ticket, status=ReviewItem.Status.PENDING).update(
        status=ReviewItem.Status.EXPIRED, claimed_by=None, claimed_until=None
    )
    if closed:
        logger.info("review items closed", extra={"ticket_id": ticket.pk, "closed": closed, "why": why})
    return closed

"""Every read of the autonomy app: evidence for calibration, honest accuracy, readiness."""

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

import numpy as np
from django.conf import settings
from django.db.models import Count, F, Q, QuerySet, Subquery, Sum, Value
from django.db.models.functions import Coalesce

from agents import decision_types
from agents.models import AgentDecision, HumanLabel, ModelVersion
from autonomy.calibration import Estimate, proportion_estimate, review_weight
from autonomy.models import AutomationPolicy, Disposition, Phase, PhaseTransition, ReviewItem
from outcomes.models import Survey
from outcomes.stats import Difference, ScoreSummary, mean_difference
from tickets.models import Ticket

APPLIED = (Disposition.Kind.AUTO_APPLIED, Disposition.Kind.AUTO_APPLIED_WITH_REVIEW)


@dataclass(frozen=True)
class Reviewed:
    """Decisions whose correctness a person established, newest first, as arrays: reviewed
    decisions, or a new model's predictions on held-out reviewed tickets."""

    raw: np.ndarray
    correct: np.ndarray
    weights: np.ndarray  # 1 / the chance the decision was drawn for review
    labels: list[str]
    eligible: np.ndarray  # could have been applied at all: in scope, a label, no guardrail block
    calibrated: np.ndarray | None = None  # as the decisions were calibrated (NaN: not at all)

    def __len__(self) -> int:
        return len(self.raw)


def reviewed_decisions(
    *,
    decision_type: str,
    model_version_id: int | None = None,
    kind: str | None = None,
    since=None,
    limit: int | None = None,
) -> Reviewed:
    """The latest ``limit`` answered review items of a decision type (of one model version,
    of one kind, created since a moment)."""
    items = ReviewItem.objects.filter(decision_type=decision_type, status=ReviewItem.Status.DONE)
    if model_version_id is not None:
        items = items.filter(decision__model_version_id=model_version_id)
    if kind is not None:
        items = items.filter(kind=kind)
    if since is not None:
        items = items.filter(created_at__gte=since)
    rows = list(
        items.order_by("-decided_at", "-id").values_list(
            "decision__raw_confidence",
            "decision__calibrated_confidence",
            "outcome",
            "sampling_rate",
            "decision__label",
            "decision__out_of_scope",
            "decision__guardrail_violations",
        )[: limit or settings.CSAI_CALIBRATION_WINDOW]
    )
    return Reviewed(
        raw=np.array([r[0] for r in rows], dtype=float),
        calibrated=np.array([np.nan if r[1] is None else r[1] for r in rows], dtype=float),
        correct=np.array([r[2] == ReviewItem.Outcome.CONFIRMED for r in rows], dtype=bool),
        weights=np.array([review_weight(r[3]) for r in rows], dtype=float),
        labels=[r[4] for r in rows],
        eligible=np.array([bool(r[4]) and not r[5] and not r[6] for r in rows], dtype=bool),
    )


def autonomous_accuracy(*, decision_type: str, since=None, last: int | None = None) -> Estimate:
    """Accuracy of the decisions the machine applied on its own, honestly estimated.

    Only from the random review sample of applied decisions (delayed reviews), each
    weighted by 1 / its sampling rate; never from the low-confidence decisions people were
    sent anyway, which would make the machine look worse (or, after a threshold change,
    better) than it is.
    """
    items = ReviewItem.objects.filter(
        decision_type=decision_type, kind=ReviewItem.Kind.DELAYED_REVIEW, status=ReviewItem.Status.DONE
    )
    if since is not None:
        items = items.filter(created_at__gte=since)
    rows = items.order_by("-decided_at", "-id").values_list("outcome", "sampling_rate")
    rows = list(rows[:last] if last else rows)
    return proportion_estimate(
        [outcome == ReviewItem.Outcome.CONFIRMED for outcome, _ in rows],
        [review_weight(rate) for _, rate in rows],
    )


def phase_started_at(*, policy: AutomationPolicy):
    """When the policy entered its current phase (None: it never moved)."""
    return (
        PhaseTransition.objects.filter(policy=policy)
        .order_by("-created_at")
        .values_list("created_at", flat=True)
    ).first()


def label_weights(*, decision_type: str, ticket_ids: list[int]) -> np.ndarray:
    """The review weight of the answer that labelled each ticket (1 for decided items)."""
    rates = dict(
        ReviewItem.objects.filter(
            decision_type=decision_type, ticket_id__in=ticket_ids, status=ReviewItem.Status.DONE
        ).values_list("ticket_id", "sampling_rate")
    )
    return np.array([review_weight(rates.get(t, 1.0)) for t in ticket_ids], dtype=float)


def disposition_counts(*, decision_type: str, since=None, last: int | None = None) -> dict[str, int]:
    """How the latest ``last`` decisions (since ``since``) were disposed, by kind."""
    rows = Disposition.objects.filter(decision__decision_type=decision_type)
    if since is not None:
        rows = rows.filter(created_at__gte=since)
    kinds = list(rows.order_by("-id").values_list("kind", flat=True)[: last or settings.CSAI_RATE_WINDOW])
    counts: dict[str, int] = {}
    for kind in kinds:
        counts[kind] = counts.get(kind, 0) + 1
    return counts


# A critical error: an applied decision a reviewer overrode on a CRITICAL-priority or VIP
# customer's ticket (a filter on review items; the dashboard counts them by day).
CRITICAL_ERROR = Q(kind=ReviewItem.Kind.DELAYED_REVIEW, outcome=ReviewItem.Outcome.OVERRIDDEN) & (
    Q(ticket__priority="CRITICAL") | Q(ticket__customer__is_vip=True)
)


def critical_errors(*, decision_type: str, since=None) -> int:
    """Applied decisions a reviewer overrode on a CRITICAL-priority or VIP customer's ticket."""
    items = ReviewItem.objects.filter(CRITICAL_ERROR, decision_type=decision_type)
    if since is not None:
        items = items.filter(created_at__gte=since)
    return items.count()


def policy_metrics(*, decision_type: str) -> dict:
    """The evidence a transition is recorded with: volumes, agreement, autonomy; for a type
    that answers customers, their CSAT of AI- against person-resolved tickets."""
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
    applied = sum(kinds.get(kind, 0) for kind in APPLIED)
    metrics = {
        "decisions": decisions,
        "dispositions": kinds,
        "reviewed": reviews["reviewed"],
        "agreement_rate": reviews["confirmed"] / reviews["reviewed"] if reviews["reviewed"] else None,
        "autonomous_rate": applied / disposed if disposed else None,
        "autonomous_accuracy": autonomous_accuracy(
            decision_type=decision_type, last=settings.CSAI_RATE_WINDOW
        ).to_dict(),
    }
    if answers_to_customers(decision_type):
        csat = customer_satisfaction(decision_type=decision_type, last=settings.CSAI_RATE_WINDOW)
        metrics["csat"] = csat.to_dict()
    return metrics


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
        "criteria": policy.criteria,
        "model_version_id": model_id,
    }


# --- readiness ---------------------------------------------------------------------------


CSAT_CRITERIA = ("csat_min_answers", "csat_max_drop")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def answers_to_customers(decision_type: str) -> bool:
    """Its applied decisions reach the customer with no person in between (the registry says)."""
    return decision_type in decision_types.names() and decision_types.get(decision_type).answers_to_customers


def phase_criteria(*, policy: AutomationPolicy) -> dict[str, float]:
    """The bar for leaving the policy's current phase upward ({} in phase 5):
    settings.CSAI_PHASE_CRITERIA, with the policy's own overrides. The CSAT criterion only
    for a decision type that answers customers on its own."""
    criteria = dict(settings.CSAI_PHASE_CRITERIA.get(policy.phase, {}))
    criteria.update(policy.criteria.get(str(policy.phase), {}))
    if not answers_to_customers(policy.decision_type):
        criteria = {key: value for key, value in criteria.items() if key not in CSAT_CRITERIA}
    return criteria


@dataclass(frozen=True)
class CustomerSatisfaction:
    """CSAT of AI-resolved against person-resolved tickets, over the readiness window."""

    ai: ScoreSummary
    person: ScoreSummary
    difference: Difference  # AI − person, with its 95 % interval

    def to_dict(self) -> dict:
        return {
            "ai": self.ai.to_dict(),
            "person": self.person.to_dict(),
            "difference": self.difference.to_dict(),
        }


def customer_satisfaction(*, decision_type: str, since=None, last: int) -> CustomerSatisfaction:
    """Answers to the surveys of resolutions made within the window the other readiness
    criteria use: since the oldest of the latest ``last`` decisions of the type made since
    ``since`` (the phase's start), or since ``since`` while there are fewer. Split by who
    had resolved the ticket when the customer was asked. One query: the window's start is a
    subquery of the aggregate (survey_sent_idx)."""
    window = Disposition.objects.filter(decision__decision_type=decision_type)
    if since is not None:
        window = window.filter(created_at__gte=since)
    start = Coalesce(
        Subquery(window.order_by("-id").values("created_at")[last - 1 : last]), Value(since or EPOCH)
    )
    squares = F("score") * F("score")
    sums = {}
    for side, resolver in (("ai", Ticket.Resolver.AI), ("person", Ticket.Resolver.PERSON)):
        of_side = Q(resolved_by=resolver)
        sums |= {
            f"{side}_n": Count("id", filter=of_side),
            f"{side}_total": Sum("score", filter=of_side),
            f"{side}_squares": Sum(squares, filter=of_side),
        }
    row = Survey.objects.filter(answered_at__isnull=False, sent_at__gte=start).aggregate(**sums)
    ai, person = (
        ScoreSummary.from_sums(
            n=row[f"{s}_n"], total=row[f"{s}_total"] or 0, squares=row[f"{s}_squares"] or 0
        )
        for s in ("ai", "person")
    )
    return CustomerSatisfaction(ai=ai, person=person, difference=mean_difference(ai, person))


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


@dataclass(frozen=True)
class Readiness:
    """Where a decision type stands in its phase and what still blocks the next one."""

    phase: Phase
    decisions: int  # of this phase, in the window
    reviewed: int  # people's answers (phases 1–2) or sampled reviews of applied decisions
    agreement_rate: float | None
    projected_accuracy: Estimate  # what the threshold would apply, judged on people's answers
    autonomous_rate: float | None
    autonomous_accuracy: Estimate
    ece: float | None
    critical_errors: int
    threshold: float | None
    # Decision types that answer customers: CSAT of AI- against person-resolved tickets.
    csat: CustomerSatisfaction | None = None
    criteria: dict[str, float] = field(default_factory=dict)
    blockers: list[str] = field(default_factory=list)
    readiness_score: float = 0.0

    @property
    def ready(self) -> bool:
        return self.phase.next is not None and not self.blockers

    @property
    def accuracy(self) -> tuple[str, float | None]:
        """The accuracy that counts in this phase, named: shadow accuracy (the hidden answers
        against people's), projected accuracy, or the sampled autonomous accuracy."""
        if self.phase == Phase.FULL_OVERSIGHT:
            return "shadow_accuracy", self.agreement_rate
        if self.phase == Phase.ASSISTED:
            return "projected_accuracy", self.projected_accuracy.value
        return "autonomous_accuracy", self.autonomous_accuracy.value

    def to_dict(self) -> dict:
        return {
            "phase": int(self.phase),
            "decisions": self.decisions,
            "reviewed": self.reviewed,
            "agreement_rate": self.agreement_rate,
            "projected_accuracy": self.projected_accuracy.to_dict(),
            "autonomous_rate": self.autonomous_rate,
            "autonomous_accuracy": self.autonomous_accuracy.to_dict(),
            "ece": self.ece,
            "critical_errors": self.critical_errors,
            "threshold": self.threshold,
            "csat": self.csat.to_dict() if self.csat else None,
            "criteria": self.criteria,
            "blockers": self.blockers,
            "ready": self.ready,
            "readiness_score": self.readiness_score,
        }


def policy_readiness(*, policy: AutomationPolicy) -> Readiness:
    """Where a decision type stands and what still blocks its next phase.

    Everything is measured on the latest decisions since the policy entered its phase;
    autonomous accuracy only on the random review sample of applied decisions.
    """
    decision_type = policy.decision_type
    phase = policy.current_phase
    since = phase_started_at(policy=policy)
    criteria = phase_criteria(policy=policy)
    window = int(criteria.get("window", settings.CSAI_RATE_WINDOW))
    counts = disposition_counts(decision_type=decision_type, since=since, last=window)
    decided = sum(counts.values())
    applied = sum(counts.get(kind, 0) for kind in APPLIED)
    # Whatever model version made them: the latest decisions of this phase people answered.
    recent = reviewed_decisions(
        decision_type=decision_type, kind=ReviewItem.Kind.DECIDE, since=since, limit=window
    )
    agreement = float(recent.correct.mean()) if len(recent) else None
    # What phase 3 would apply, judged on the decisions people made themselves.
    would_apply = (
        recent.eligible & ~np.isnan(recent.calibrated) & (recent.calibrated >= policy.threshold)
        if policy.threshold is not None and len(recent)
        else np.zeros(len(recent), dtype=bool)
    )
    projected = proportion_estimate(recent.correct[would_apply])
    autonomous = autonomous_accuracy(decision_type=decision_type, since=since, last=window)
    ece = policy.calibration.ece if policy.calibration else None
    readiness = Readiness(
        phase=phase,
        decisions=decided,
        reviewed=autonomous.n if phase.applies_automatically else len(recent),
        agreement_rate=agreement,
        projected_accuracy=projected,
        autonomous_rate=_share(applied, decided),
        autonomous_accuracy=autonomous,
        ece=ece,
        critical_errors=critical_errors(decision_type=decision_type, since=since),
        threshold=policy.threshold,
        csat=(
            customer_satisfaction(decision_type=decision_type, since=since, last=window)
            if answers_to_customers(decision_type)
            else None
        ),
        criteria=criteria,
    )
    accuracy = autonomous.value if phase.applies_automatically else agreement
    parts = [
        accuracy or 0.0,  # success rate
        1.0 - min(1.0, (autonomous.high - autonomous.low) if autonomous.n else 1.0),  # consistency
        1.0 - min(1.0, ece if ece is not None else 1.0),  # confidence accuracy
    ]
    return replace(
        readiness, blockers=_blockers(readiness), readiness_score=round(sum(parts) / len(parts), 4)
    )


def _blockers(readiness: Readiness) -> list[str]:
    """What keeps the policy from its next phase, in words a supervisor reads."""
    phase, criteria = readiness.phase, readiness.criteria
    if phase.next is None:
        return [f"phase {int(phase)} is the highest phase"]
    out = []

    def at_least(value, bar, what: str, fmt: str = "{:.2f}") -> None:
        if value is None:
            out.append(f"{what} none yet < {fmt.format(bar)}")
        elif value < bar:
            shown, limit = fmt.format(value), fmt.format(bar)
            if shown == limit:  # 0.8496 < 0.85 must not read "0.85 < 0.85"
                shown, limit = f"{value:.4f}", f"{bar:.4f}"
            out.append(f"{what} {shown} < {limit}")

    if not phase.applies_automatically:
        at_least(readiness.reviewed, criteria.get("min_reviewed", 0), "reviewed decisions", "{:.0f}")
        if phase == Phase.FULL_OVERSIGHT:
            at_least(readiness.agreement_rate, criteria.get("min_accuracy", 0), "shadow accuracy")
        else:
            at_least(readiness.agreement_rate, criteria.get("min_agreement", 0), "agreement")
            if readiness.threshold is None:
                out.append("no calibrated threshold meets the target precision yet")
            else:
                at_least(
                    readiness.projected_accuracy.value,
                    criteria.get("min_accuracy", 0),
                    "accuracy above the threshold",
                )
        return out + _csat_blockers(readiness)
    at_least(readiness.decisions, criteria.get("min_decisions", 0), "decisions in this phase", "{:.0f}")
    accuracy = readiness.autonomous_accuracy
    at_least(accuracy.n, criteria.get("min_reviewed", 0), "reviewed autonomous decisions", "{:.0f}")
    at_least(readiness.autonomous_rate, criteria.get("min_autonomous_rate", 0), "autonomous rate")
    at_least(accuracy.value, criteria.get("min_accuracy", 0), "autonomous accuracy")
    if readiness.critical_errors > criteria.get("max_critical_errors", 0):
        out.append(f"{readiness.critical_errors} critical errors in this phase")
    return out + _csat_blockers(readiness)


def _csat_blockers(readiness: Readiness) -> list[str]:
    """The CSAT criterion, where the phase has one (by default, leaving phases 3 and 4)."""
    criteria, csat = readiness.criteria, readiness.csat
    needed = int(criteria.get("csat_min_answers", 0))
    if csat is None or "csat_max_drop" not in criteria or needed <= 0:
        return []
    ai, person, difference = csat.ai, csat.person, csat.difference
    if min(ai.n, person.n) < needed or difference.low is None:
        return [
            f"customer satisfaction: not enough answers (AI-resolved {ai.n}, person-resolved "
            f"{person.n}; {needed} each needed)"
        ]
    bar = -criteria["csat_max_drop"]
    if difference.low >= bar:
        return []
    return [
        f"CSAT of AI-resolved tickets {ai.mean:.2f} against {person.mean:.2f} person-resolved: "
        f"difference {difference.value:+.2f}, 95 % interval {difference.low:+.2f} to "
        f"{difference.high:+.2f}, reaches below {bar:+.2f}"
    ]


def retrain_due(*, decision_type: str) -> bool:
    """Enough new confirmed outcomes since the active model (or any model) was trained:
    settings.CSAI_RETRAIN_FIRST labels for a first model, then a growth of CSAI_RETRAIN_GROWTH."""
    labels = HumanLabel.objects.filter(decision_type=decision_type).count()
    model = ModelVersion.objects.filter(decision_type=decision_type).order_by("-version").first()
    if model is None:
        return labels >= settings.CSAI_RETRAIN_FIRST
    # training_size counts the labels outside the held-out fifth, about 80 % of all.
    return labels * 0.8 >= model.training_size * (1 + settings.CSAI_RETRAIN_GROWTH)


def ticket_decisions(*, ticket) -> QuerySet[AgentDecision]:
    """Every decision on a ticket, oldest first (the audit trail), with what became of it."""
    return (
        AgentDecision.objects.filter(ticket=ticket)
        .select_related("run", "disposition", "review_item")
        .order_by("created_at", "id")
    )


# --- what the quality monitor reads -----------------------------------------------------------


def recent_predictions(
    *, decision_type: str, model_version_id: int | None, last: int
) -> list[tuple[float, str]]:
    """(raw confidence, label) of the latest ``last`` decisions one model version made."""
    return list(
        AgentDecision.objects.filter(decision_type=decision_type, model_version_id=model_version_id)
        .order_by("-id")
        .values_list("raw_confidence", "label")[:last]
    )


def recent_review_outcomes(*, decision_type: str, since=None, last: int) -> list[str]:
    """Outcomes of the latest ``last`` answered review items (created since ``since``), newest first."""
    items = ReviewItem.objects.filter(decision_type=decision_type, status=ReviewItem.Status.DONE)
    if since is not None:
        items = items.filter(created_at__gte=since)
    return list(items.order_by("-decided_at", "-id").values_list("outcome", flat=True)[:last])


def recent_csat_scores(*, resolved_by: str, last: int) -> list[int]:
    """Scores of the latest ``last`` answered surveys of resolutions by ``resolved_by``,
    newest resolution first (survey_sent_idx)."""
    return list(
        Survey.objects.filter(resolved_by=resolved_by, answered_at__isnull=False)
        .order_by("-sent_at", "-id")
        .values_list("score", flat=True)[:last]
    )


# --- recovery ----------------------------------------------------------------------------------


def decisions_without_disposition(*, created_before, created_since=None, limit: int) -> list[int]:
    """Ids of recorded decisions the controller never disposed of (their submission was lost),
    oldest first. Reads the decisions by creation time (agentdecision_created_idx) and probes
    each one's disposition by its unique decision id."""
    decisions = AgentDecision.objects.filter(created_at__lt=created_before, disposition__isnull=True)
    if created_since is not None:
        decisions = decisions.filter(created_at__gte=created_since)
    return list(decisions.order_by("created_at", "id").values_list("id", flat=True)[:limit])

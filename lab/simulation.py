"""The phase journey on labelled history: tickets replayed through the real pipeline and
controller, a simulated reviewer answering from the ground truth, a simulated supervisor.

Everything runs in this process: Celery tasks execute eagerly (the same task code a worker
runs), the quality monitor, calibration refits and retraining are called on a ticket count
instead of a clock. The supervisor promotes as soon as the monitor proposes a promotion
(every criterion of the next phase met), and accepts every demotion it proposes; critical
alerts demote by themselves.

Only the category decision has a ground truth in a labelled CSV. By default the pipeline
therefore stops after its first step (category and priority); ``full_pipeline`` runs the
strategy, escalation and reply agents too, at about twice the cost per ticket, and leaves
their review items waiting.
"""

import logging
import random
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from agents import decision_types
from agents.ml import expected_calibration_error
from agents.models import DecisionType
from autonomy import selectors
from autonomy.models import Alert, Disposition, PhaseTransition, ReviewItem
from autonomy.services import controller, learning, monitor, transitions
from csai.celery import app as celery_app
from lab.csvrows import AI, PERSON
from outcomes.stats import ScoreSummary
from tickets.models import Channel, Ticket, Tier
from tickets.roles import REVIEWER, SUPERVISOR
from tickets.services import CustomerData, TicketData, ticket_create

CATEGORY = DecisionType.CATEGORY
SOURCE = "simulation"
SUBJECT_FROM_TEXT = 80
CUSTOMERS = 50


@dataclass(frozen=True)
class Row:
    text: str
    label: str
    # What the history recorded, when the CSV has it: who resolved the ticket ("ai", "person",
    # "other" for neither, "" not known; lab.csvrows.resolution_value) and the customer's CSAT.
    resolution: str = ""
    csat: int | None = None

    @property
    def has_outcome(self) -> bool:
        return bool(self.resolution) or self.csat is not None


@dataclass
class Options:
    reviewer_error_rate: float = 0.02
    check_every: int = 50  # tickets between monitor / readiness / retrain checks
    target_precision: float = 0.95
    seed: int = 0
    # Reviewed decisions a threshold needs (the policy's min_samples).
    min_samples: int = 100
    # Overrides of the phase criteria (settings.CSAI_PHASE_CRITERIA), as a policy holds them.
    criteria: dict = field(default_factory=dict)
    # A person's minutes per ticket they look at (one review pass: every decision queued on
    # it), for the estimated human minutes of the outcome report.
    minutes_per_review: float = 1.0


@dataclass
class Journal:
    """What happened, for the report; ticket outcomes are read back from the database."""

    truth: dict[str, str] = field(default_factory=dict)  # external id -> true label
    order: dict[str, int] = field(default_factory=dict)  # external id -> position in the stream
    retrains: list[dict] = field(default_factory=list)
    # external id -> the row, for rows whose history recorded an outcome
    outcomes: dict[str, Row] = field(default_factory=dict)


@contextmanager
def tasks_in_process(*, full_pipeline: bool = True) -> Iterator[None]:
    """Celery runs each task in this process as it is sent (the same code a worker runs),
    and per-ticket log lines are muted so the progress bar stays readable. Without
    ``full_pipeline`` a run ends after the classifier step."""
    conf = celery_app.conf
    saved = conf.task_always_eager, conf.task_eager_propagates, settings.CSAI_PIPELINE_LAST_STEP
    conf.task_always_eager = conf.task_eager_propagates = True
    if not full_pipeline:
        settings.CSAI_PIPELINE_LAST_STEP = "classify"
    logging.disable(logging.INFO)
    try:
        yield
    finally:
        conf.task_always_eager, conf.task_eager_propagates, settings.CSAI_PIPELINE_LAST_STEP = saved
        logging.disable(logging.NOTSET)


def _users():
    User = get_user_model()
    reviewer, _ = User.objects.get_or_create(username="sim-reviewer")
    supervisor, _ = User.objects.get_or_create(username="sim-supervisor")
    reviewer.groups.add(Group.objects.get(name=REVIEWER))
    supervisor.groups.add(Group.objects.get(name=SUPERVISOR))
    # Fresh objects: permission caches are filled on first use.
    return User.objects.get(pk=reviewer.pk), User.objects.get(pk=supervisor.pk)


def _ticket(index: int, row: Row, rng: random.Random) -> TicketData:
    customer = rng.randrange(CUSTOMERS)
    return TicketData(
        source=SOURCE,
        external_id=f"sim-{index}",
        subject=row.text[:SUBJECT_FROM_TEXT],
        body=row.text,
        channel=Channel.API,
        customer=CustomerData(
            external_id=f"sim-customer-{customer}",
            name=f"Customer {customer}",
            tier=[Tier.BASIC, Tier.STANDARD, Tier.PREMIUM][customer % 3],
        ),
        metadata={},
    )


def _review(ticket_id: int, truth: str, labels: list[str], reviewer, options: Options, rng) -> None:
    """The simulated reviewer answers the ticket's category items, wrong at the error rate."""
    for item in ReviewItem.objects.filter(
        ticket_id=ticket_id, decision_type=CATEGORY, status=ReviewItem.Status.PENDING
    ).select_related("decision"):
        answer = truth
        if rng.random() < options.reviewer_error_rate:
            answer = rng.choice([label for label in labels if label != truth] or [truth])
        controller.review_item_answer(item=item, actor=reviewer, label=answer, seconds=20.0)


def _supervise(supervisor, journal: Journal) -> None:
    """Monitor, learn, recalibrate, then promote or accept proposed demotions."""
    for alert in monitor.quality_check(decision_type=CATEGORY):
        policy = controller.policy_for(CATEGORY)
        if alert.proposed_phase and policy.phase > alert.proposed_phase:
            transitions.policy_demote(
                policy=policy,
                actor=supervisor,
                to_phase=alert.proposed_phase,
                reason=f"Accepting the monitor's proposal ({alert.type}): {alert.recommendation}",
            )
        monitor.alert_acknowledge(alert=alert, actor=supervisor, note="simulated supervisor")
    if selectors.retrain_due(decision_type=CATEGORY):
        journal.retrains.append(asdict(learning.model_retrain(decision_type=CATEGORY)))
    learning.calibration_refresh(decision_type=CATEGORY)
    if proposal := monitor.promotion_propose(decision_type=CATEGORY):
        reason = f"As proposed: {proposal.metric} {proposal.value:.3f} on {proposal.samples} reviewed."
        transitions.policy_promote(policy=controller.policy_for(CATEGORY), actor=supervisor, reason=reason)


def simulate(
    rows: list[Row],
    *,
    options: Options,
    drift_at: int | None = None,
    progress: Callable[[int], None] = lambda n: None,
) -> dict:
    """Replay ``rows`` in order; returns the report (see ``report``). ``drift_at`` only
    labels the report: from that position on, the rows came from another source."""
    rng = random.Random(options.seed)
    reviewer, supervisor = _users()
    policy = controller.policy_for(CATEGORY)
    policy.target_precision = options.target_precision
    policy.criteria = options.criteria
    policy.min_samples = options.min_samples
    policy.save(update_fields=["target_precision", "criteria", "min_samples", "updated_at"])
    labels = sorted({row.label for row in rows})
    journal = Journal()
    with _category_labels(labels):
        for index, row in enumerate(rows):
            data = _ticket(index, row, rng)
            journal.truth[data.external_id] = row.label
            journal.order[data.external_id] = index
            if row.has_outcome:
                journal.outcomes[data.external_id] = row
            ticket, _ = ticket_create(data=data)  # eager Celery: intake and all four agents run now
            _review(ticket.pk, row.label, labels, reviewer, options, rng)
            if (index + 1) % options.check_every == 0:
                _supervise(supervisor, journal)
            progress(1)
    return report(journal, drift_at=drift_at, minutes_per_review=options.minutes_per_review)


@contextmanager
def _category_labels(labels: list[str]):
    """The replayed data's own categories are what its reviewer may answer, for the run."""
    product = decision_types.get(CATEGORY)
    decision_types.register(replace(product, fixed_labels=tuple(labels)))
    try:
        yield
    finally:
        decision_types.register(product)


def report(journal: Journal, *, drift_at: int | None, minutes_per_review: float = 1.0) -> dict:
    """Per phase and overall: tickets, autonomous rate and true precision, human decisions, ECE;
    and, when the history recorded outcomes, those outcomes and the human minutes (see
    ``_outcomes``)."""
    rows = Disposition.objects.filter(decision__decision_type=CATEGORY).values_list(
        "decision__ticket__external_id",
        "phase",
        "applied",
        "decision__label",
        "decision__calibrated_confidence",
    )
    humans = set(
        ReviewItem.objects.filter(decision_type=CATEGORY, status=ReviewItem.Status.DONE).values_list(
            "ticket__external_id", flat=True
        )
    )
    by_phase: dict[int, dict] = {}
    phase_of: dict[str, int] = {}
    overall = {"applied": 0, "right": 0, "after_drift_applied": 0, "after_drift_right": 0}
    for external_id, phase, applied, label, calibrated in rows:
        truth = journal.truth.get(external_id)
        if truth is None:
            continue
        right = label == truth
        phase_of[external_id] = phase
        stats = by_phase.setdefault(
            phase, {"tickets": 0, "applied": 0, "right": 0, "human": 0, "confidence": [], "correct": []}
        )
        stats["tickets"] += 1
        stats["human"] += external_id in humans
        if calibrated is not None:
            stats["confidence"].append(calibrated)
            stats["correct"].append(float(right))
        if applied:
            stats["applied"] += 1
            stats["right"] += right
            overall["applied"] += 1
            overall["right"] += right
            if drift_at is not None and journal.order[external_id] >= drift_at:
                overall["after_drift_applied"] += 1
                overall["after_drift_right"] += right
    phases = [
        {
            "phase": phase,
            "tickets": s["tickets"],
            "autonomous_rate": s["applied"] / s["tickets"],
            "autonomous_precision": s["right"] / s["applied"] if s["applied"] else None,
            "human_decisions": s["human"],
            "ece": expected_calibration_error(s["confidence"], s["correct"]) if s["confidence"] else None,
        }
        for phase, s in sorted(by_phase.items())
    ]
    tickets = sum(s["tickets"] for s in by_phase.values())
    transitions = [
        {
            "at_ticket": _position_at(journal, t.created_at),
            "direction": t.direction,
            "from": t.from_phase,
            "to": t.to_phase,
            "by": t.actor.username if t.actor else "system",
            "reason": t.reason[:160],
        }
        for t in PhaseTransition.objects.select_related("actor").order_by("created_at", "id")
    ]
    alerts = [
        {
            "at_ticket": _position_at(journal, a.created_at),
            "type": a.type,
            "severity": a.severity,
            "value": a.value,
            "threshold": a.threshold,
            "proposed_phase": a.proposed_phase,
        }
        for a in Alert.objects.order_by("created_at", "id")
    ]
    result = {
        "tickets": tickets,
        "final_phase": controller.policy_for(CATEGORY).phase,
        "autonomous_rate": overall["applied"] / tickets if tickets else 0.0,
        "autonomous_precision": overall["right"] / overall["applied"] if overall["applied"] else None,
        "human_decisions": len(humans),
        "phases": phases,
        "alerts": alerts,
        "transitions": transitions,
        "retrains": journal.retrains,
    }
    if journal.outcomes:
        result["outcomes"] = _outcomes(journal, phase_of, minutes_per_review)
    if drift_at is not None:
        applied = overall["after_drift_applied"]
        result["after_drift"] = {
            "from_ticket": drift_at,
            "applied": applied,
            "autonomous_precision": overall["after_drift_right"] / applied if applied else None,
        }
    return result


def _outcomes(journal: Journal, phase_of: dict[str, int], minutes_per_review: float) -> dict:
    """What the history recorded for the tickets replayed in each phase, and the human
    minutes the replay's review queue stands for.

    Recorded, not simulated: the replay does not resolve tickets or ask customers, so the AI
    resolution rate and CSAT of a phase are those the CSV gives for the tickets that went
    through that phase. Estimated: human minutes are the tickets the replay queued for a
    person (any review item: decide or check, any decision type) × ``minutes_per_review``.
    """
    queued = set(ReviewItem.objects.values_list("ticket__external_id", flat=True).distinct())

    def summary(external_ids: list[str]) -> dict:
        rows = [journal.outcomes[e] for e in external_ids if e in journal.outcomes]
        resolved = [r.resolution for r in rows if r.resolution]
        reviews = sum(e in queued for e in external_ids)
        csat = {}
        for resolver in (AI, PERSON):
            scores = [r.csat for r in rows if r.resolution == resolver and r.csat is not None]
            n, total, squares = len(scores), sum(scores), sum(x * x for x in scores)
            csat[resolver] = ScoreSummary.from_sums(n=n, total=total, squares=squares).to_dict()
        return {
            "tickets": len(external_ids),
            "resolution_recorded": len(resolved),
            "ai_resolution_rate": resolved.count(AI) / len(resolved) if resolved else None,
            "csat_ai": csat[AI],
            "csat_person": csat[PERSON],
            "review_passes": reviews,
            "human_minutes": round(reviews * minutes_per_review, 1),
        }

    phases = sorted(set(phase_of.values()))
    return {
        "minutes_per_review": minutes_per_review,
        "phases": [
            {"phase": phase, **summary([e for e, p in phase_of.items() if p == phase])} for phase in phases
        ],
        "total": summary(list(phase_of)),
    }


def _position_at(journal: Journal, moment) -> int | None:
    """The stream position of the last ticket created before ``moment``."""
    external_id = (
        Ticket.objects.filter(source=SOURCE, created_at__lte=moment)
        .order_by("-created_at", "-id")
        .values_list("external_id", flat=True)
        .first()
    )
    return journal.order.get(external_id) if external_id else None


def shuffled(rows: list[Row], seed: int) -> list[Row]:
    out = list(rows)
    random.Random(seed).shuffle(out)
    return out

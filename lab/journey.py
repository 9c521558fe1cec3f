"""A demo team some weeks into its journey, built honestly for a first ``make run``.

Generated tickets arrive over the last ``days`` days (none today) and go through the real
intake, the four agents and the autonomy controller (Celery eager, as ``simulate`` runs
them). Demo reviewers answer every pending decision of a ticket in one pass, through the
same services the console calls, and resolve the ticket some hours later (about a third of
the customers answer the satisfaction survey that mails them, through its real service); a demo
supervisor runs the quality monitor, retraining and calibration, and promotes a decision
type when the monitor proposes it, up to a target phase (category 3, priority 2 by
default), accepting every demotion it proposes. Nothing writes a figure: every page reads
what these actions left behind.

Time: events (arrival, review, resolution) are replayed in time order with
``django.utils.timezone.now`` answering the event's moment (``demo_clock``), so every row
carries the time it would have had. The clock never goes back: an event due earlier than
the last one replayed happens at the last one's time.

The reviewers' answers: category and priority from the generator's answer key
(``demo_truth``), wrong at ``reviewer_error_rate``. For a stretch near the end a new
reviewer takes the queue and rates priority one level too urgent more often than not; the
real monitor notices the jump in overrides (and what it does to the calibration), and the
supervisor leaves those alerts open: the reviewer's doing, not the model's, so no demotion.
Strategy and escalation have no key: a reviewer keeps the agent's answer when the agent got
category and priority right, and otherwise changes it half the time. In phase 1 a reviewer
writes their own reply, then rates the hidden draft: fine when category and priority were
right, needing edits when not, wrong when the guardrails blocked it.
"""

import heapq
import math
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from datetime import time as clock_time

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.cache import cache
from django.utils import timezone

from agents import decision_types
from agents.decision_types import ReplyAnswer
from agents.models import AgentDecision, DecisionType
from agents.proposers import PRIORITY_ORDER
from autonomy import selectors
from autonomy.models import Alert, ReviewItem
from autonomy.services import controller, learning, monitor, transitions
from csai.logging import new_correlation_id, set_correlation_id
from lab.demo import iter_tickets
from outcomes.day_figures import day_figures_rescan
from outcomes.services import survey_answer
from review.services import ticket_resolve_by, ticket_review_claim
from tickets.models import Ticket
from tickets.roles import REVIEWER, SUPERVISOR
from tickets.serializers import WebhookTicketSerializer

SOURCE = "demo-history"
SEED = 20260301
STATUS_KEY = "lab:demo-history"
REVIEWERS = ("demo-ana", "demo-ben", "demo-chloe", "demo-dan")  # dan: the new one
NEW_REVIEWER = "demo-dan"
SUPERVISOR_NAME = "demo-sam"
TRUTH = (DecisionType.CATEGORY, DecisionType.PRIORITY)


@dataclass
class Options:
    tickets: int = 1000
    days: int = 30
    # How far the demo supervisor promotes each decision type (the others stay in phase 1).
    targets: dict[str, int] = field(
        default_factory=lambda: {DecisionType.CATEGORY: 3, DecisionType.PRIORITY: 2}
    )
    reviewer_error_rate: float = 0.03
    check_every: int = 50  # reviewed tickets between the supervisor's rounds
    seed: int = SEED
    # Per decision type, overrides of the phase criteria (as a policy holds them); none for
    # the demo: the product's own bars.
    criteria: dict[str, dict] = field(default_factory=dict)
    # The new reviewer's stretch: from this share of the tickets on, this many tickets.
    new_reviewer_from: float = 0.85
    new_reviewer_tickets: int = 120
    new_reviewer_bias: float = 0.6  # how often he rates priority one level too urgent


# --- the clock -----------------------------------------------------------------------------


class DemoClock:
    """``timezone.now()`` for the replay: the moment of the event being replayed, plus the
    real time spent on it (so rows written one after the other keep their order)."""

    def __init__(self, at: datetime):
        self._at, self._since = at, time.monotonic()

    def now(self) -> datetime:
        return self._at + timedelta(seconds=time.monotonic() - self._since)

    def set(self, at: datetime) -> datetime:
        """Move to ``at``, never back; returns the moment now is."""
        self._at, self._since = max(at, self.now()), time.monotonic()
        return self._at


@contextmanager
def demo_clock(clock: DemoClock) -> Iterator[DemoClock]:
    """Everything that asks ``django.utils.timezone.now()`` in this process gets the clock."""
    saved = timezone.now
    timezone.now = clock.now
    try:
        yield clock
    finally:
        timezone.now = saved


def window_start(*, days: int) -> datetime:
    """Midnight ``days - 1`` days ago: the first day of a ``days``-day dashboard."""
    first = timezone.localdate() - timedelta(days=days - 1)
    return timezone.make_aware(datetime.combine(first, clock_time.min))


# --- progress, for the console notice and the launcher ----------------------------------------


def status() -> dict | None:
    """{"state": "building" | "done", "done": n, "total": n, "phases": {...}}, or None."""
    return cache.get(STATUS_KEY)


def status_set(**values) -> None:
    cache.set(STATUS_KEY, values, timeout=None)


# --- people ----------------------------------------------------------------------------------


def _team():
    """The demo reviewers and supervisor: no password, they never log in."""
    User = get_user_model()
    people = []
    for username, group in [*((name, REVIEWER) for name in REVIEWERS), (SUPERVISOR_NAME, SUPERVISOR)]:
        user, created = User.objects.get_or_create(
            username=username, defaults={"first_name": username.removeprefix("demo-").title()}
        )
        if created:
            user.set_unusable_password()
            user.save(update_fields=["password"])
        user.groups.add(Group.objects.get(name=group))
        people.append(User.objects.get(pk=user.pk))  # fresh: permission caches fill on first use
    return people[:-1], people[-1]


# --- the schedule ----------------------------------------------------------------------------


def arrivals(*, count: int, start: datetime, end: datetime, rng: random.Random) -> list[datetime]:
    """``count`` arrival times between ``start`` and ``end``: mostly office hours, fewer at
    weekends, in order."""
    days = max(1, math.ceil((end - start) / timedelta(days=1)))
    weights = [0.4 if (start + timedelta(days=d)).weekday() >= 5 else 1.0 for d in range(days)]
    times = []
    while len(times) < count:
        day = rng.choices(range(days), weights=weights)[0]
        hour = rng.uniform(8, 19) if rng.random() < 0.85 else rng.uniform(0, 24)
        moment = start + timedelta(days=day, hours=hour)
        if moment < end:
            times.append(moment)
    return sorted(times)


# --- the reviewer ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Truth:
    labels: dict[str, str]  # the answer key: category, priority
    right: bool  # the agent's category and priority were both right


def _other(labels: list[str], not_this: str, rng: random.Random) -> str:
    return rng.choice([label for label in labels if label != not_this] or [not_this])


def _own_reply(ticket: Ticket) -> str:
    name = ticket.customer.name.split()[0] if ticket.customer.name else "there"
    return (
        f"Hi {name},\n\nThanks for getting in touch. I have looked into this and will follow up "
        f"with the details shortly.\n\nReference: #{ticket.pk}"
    )


def _answer(
    item: ReviewItem, truth: Truth, ticket: Ticket, options: Options, rng, *, new: bool
) -> controller.Answer:
    kind = decision_types.get(item.decision_type)
    decision = item.decision
    if kind.drafts_text:
        if item.show_suggestion and truth.right and not decision.guardrail_violations:
            return controller.Answer(label=ReplyAnswer.SENT)
        return controller.Answer(label=ReplyAnswer.EDITED, reply=_own_reply(ticket))
    labels = kind.labels()
    if item.decision_type in truth.labels:
        answer = truth.labels[item.decision_type]
        if rng.random() < options.reviewer_error_rate:
            answer = _other(labels, answer, rng)
        elif new and item.decision_type == DecisionType.PRIORITY and rng.random() < options.new_reviewer_bias:
            answer = PRIORITY_ORDER[min(PRIORITY_ORDER.index(answer) + 1, len(PRIORITY_ORDER) - 1)]
        return controller.Answer(label=answer)
    answer = decision.label or labels[0]
    if not truth.right and rng.random() < 0.5:
        answer = _other(labels, answer, rng)
    return controller.Answer(label=answer)


def _rating(item: ReviewItem, truth: Truth) -> str:
    if item.decision.guardrail_violations or item.decision.label != ReplyAnswer.SENT:
        return ReviewItem.DraftRating.WRONG
    return ReviewItem.DraftRating.FINE if truth.right else ReviewItem.DraftRating.NEEDED_EDITS


def review_pass(*, ticket: Ticket, truth_labels: dict, reviewer, clock: DemoClock, options, rng) -> int:
    """One reviewer claims the ticket, answers every pending decision in one pass a minute or
    three later, and rates hidden drafts. Returns how many decisions were answered."""
    items = list(
        ReviewItem.objects.filter(ticket=ticket, status=ReviewItem.Status.PENDING).select_related("decision")
    )
    if not items:
        return 0
    agent = dict(
        AgentDecision.objects.filter(ticket=ticket, decision_type__in=TRUTH).values_list(
            "decision_type", "label"
        )
    )
    truth = Truth(truth_labels, all(agent.get(t) == truth_labels.get(t) for t in TRUTH))
    ticket_review_claim(ticket=ticket, user=reviewer)
    clock.set(clock.now() + timedelta(seconds=rng.uniform(40, 240)))
    new = reviewer.username == NEW_REVIEWER
    answers = {item.pk: _answer(item, truth, ticket, options, rng, new=new) for item in items}
    controller.ticket_review_answer(ticket=ticket, actor=reviewer, answers=answers)
    for item in items:
        if decision_types.get(item.decision_type).drafts_text and not item.show_suggestion:
            controller.draft_rate(item=item, actor=reviewer, rating=_rating(item, truth))
    return len(items)


# --- the supervisor --------------------------------------------------------------------------


def supervise(*, supervisor, options: Options) -> None:
    """A supervisor's round: monitor every decision type, accept proposed demotions (not for
    a jump in overrides), retrain and recalibrate, and promote a type the monitor proposes,
    up to its target phase."""
    for decision_type in decision_types.names():
        for alert in monitor.quality_check(decision_type=decision_type):
            # A jump in overrides is the people's doing here, not the model's: no demotion.
            # What is not acted on stays open (refreshed while it lasts) for a person to see.
            policy = controller.policy_for(decision_type)
            demote = alert.proposed_phase and policy.phase > alert.proposed_phase
            if demote and alert.type != Alert.Type.OVERRIDE_SPIKE:
                transitions.policy_demote(
                    policy=policy,
                    actor=supervisor,
                    to_phase=alert.proposed_phase,
                    reason=f"Accepting the monitor's proposal ({alert.get_type_display()}): "
                    f"{alert.recommendation}",
                )
                monitor.alert_acknowledge(alert=alert, actor=supervisor, note="Demoted as proposed.")
        if selectors.retrain_due(decision_type=decision_type):
            learning.model_retrain(decision_type=decision_type)
        learning.calibration_refresh(decision_type=decision_type)
        proposal = monitor.promotion_propose(decision_type=decision_type)
        policy = controller.policy_for(decision_type)
        if proposal and policy.phase < options.targets.get(decision_type, 1):
            reason = (
                f"As proposed: {proposal.metric.replace('_', ' ')} {proposal.value:.0%} "
                f"on {proposal.samples} reviewed decisions."
            )
            transitions.policy_promote(policy=policy, actor=supervisor, reason=reason)


# --- the journey -----------------------------------------------------------------------------


ARRIVE, REVIEW, RESOLVE, RATE = 0, 1, 2, 3
# About a third of the demo customers answer the survey a resolution mails them, most within
# a day; scores lean high, lower after an escalation (the problem was harder, the wait longer).
SURVEY_ANSWER_RATE = 0.3
SCORE_WEIGHTS = {False: (1, 1, 3, 10, 15), True: (2, 3, 6, 10, 8)}  # by escalated


def _survey_answer(ticket: Ticket, rng: random.Random) -> tuple[timedelta, int] | None:
    """When (after the resolution) and what the customer answers, or None: no answer."""
    if rng.random() >= SURVEY_ANSWER_RATE:
        return None
    score = rng.choices(range(1, 6), weights=SCORE_WEIGHTS[ticket.escalated_at is not None])[0]
    return timedelta(hours=rng.lognormvariate(1.5, 1.0)), score


def _reviewer(n: int, reviewers: list, options: Options, rng: random.Random):
    """Who answers the ``n``-th ticket: the new reviewer during his stretch, else any other."""
    first = int(options.tickets * options.new_reviewer_from)
    if first <= n < first + options.new_reviewer_tickets:
        return next(r for r in reviewers if r.username == NEW_REVIEWER)
    return rng.choice([r for r in reviewers if r.username != NEW_REVIEWER])


def _resolution_delay(ticket: Ticket, rng: random.Random) -> timedelta:
    if ticket.status == Ticket.Status.ESCALATED:
        return timedelta(hours=rng.uniform(3, 40))
    return timedelta(hours=rng.lognormvariate(1.0, 0.9))


def _validated(payload: dict):
    serializer = WebhookTicketSerializer(data=payload)
    serializer.is_valid(raise_exception=True)
    return serializer.to_ticket_data()


Progress = Callable[[int, datetime], None]


def journey_build(*, options: Options, progress: Progress = lambda n, at: None) -> dict:
    """Replay ``options.tickets`` demo tickets over the last ``options.days`` days (today
    excluded). Call with Celery eager (``lab.simulation.tasks_in_process``). Returns counts."""
    from tickets.services import ticket_create

    rng = random.Random(options.seed)
    reviewers, supervisor = _team()
    for decision_type, criteria in options.criteria.items():
        policy = controller.policy_for(decision_type)
        policy.criteria = criteria
        policy.save(update_fields=["criteria", "updated_at"])
    start = window_start(days=options.days)
    end = timezone.make_aware(datetime.combine(timezone.localdate(), clock_time.min)) - timedelta(hours=1)
    payloads = iter_tickets(seed=options.seed, source=SOURCE)
    events: list[tuple[datetime, int, int, object]] = []
    for n, at in enumerate(arrivals(count=options.tickets, start=start, end=end, rng=rng)):
        heapq.heappush(events, (at, ARRIVE, n, next(payloads)))
    clock = DemoClock(start)
    counts = {"tickets": 0, "reviewed": 0, "answers": 0, "resolved": 0, "csat_answers": 0}
    truth: dict[int, dict] = {}
    with demo_clock(clock):
        while events:
            at, kind, n, payload = heapq.heappop(events)
            if kind == RESOLVE and at > end:
                continue  # still open: the team is on it
            clock.set(at)
            if kind == ARRIVE:
                correlation_id = new_correlation_id()
                set_correlation_id(correlation_id)
                ticket, _ = ticket_create(data=_validated(payload), correlation_id=correlation_id)
                truth[ticket.pk] = payload["metadata"]["demo_truth"]
                wait = timedelta(minutes=rng.lognormvariate(2.3, 0.8))  # ~10 min in the queue
                heapq.heappush(events, (clock.now() + wait, REVIEW, n, ticket.pk))
                counts["tickets"] += 1
                progress(counts["tickets"], clock.now())
            elif kind == REVIEW:
                ticket = Ticket.objects.select_related("customer").get(pk=payload)
                counts["answers"] += review_pass(
                    ticket=ticket,
                    truth_labels=truth.pop(payload),
                    reviewer=_reviewer(n, reviewers, options, rng),
                    clock=clock,
                    options=options,
                    rng=rng,
                )
                counts["reviewed"] += 1
                ticket.refresh_from_db()
                heapq.heappush(events, (clock.now() + _resolution_delay(ticket, rng), RESOLVE, n, ticket.pk))
                if counts["reviewed"] % options.check_every == 0:
                    supervise(supervisor=supervisor, options=options)
            elif kind == RESOLVE:
                ticket = Ticket.objects.get(pk=payload)
                if ticket.status not in (Ticket.Status.RESOLVED, Ticket.Status.CLOSED):
                    ticket_resolve_by(ticket=ticket, user=rng.choice(reviewers))
                    counts["resolved"] += 1
                    survey = ticket.surveys.order_by("-pk").first()
                    answer = survey and _survey_answer(ticket, rng)
                    if answer and clock.now() + answer[0] <= end:
                        heapq.heappush(events, (clock.now() + answer[0], RATE, n, (survey.pk, answer[1])))
            else:
                survey_id, score = payload
                survey_answer(survey_id=survey_id, score=score)
                counts["csat_answers"] += 1
        set_correlation_id(None)
        supervise(supervisor=supervisor, options=options)
    # Everything was stamped with the past: the dashboard's stored days look at it again
    # (days stored while the history was being built would otherwise keep a part of it).
    day_figures_rescan(since=start)
    counts["alerts"] = Alert.objects.count()
    return counts


def phases() -> dict[str, int]:
    return {name: controller.policy_for(name).phase for name in decision_types.names()}

"""The demo team's first weeks, as a first ``make run`` builds them, on a small scale."""

import io
from datetime import datetime, time, timedelta

import pytest
from django.core.management import call_command
from django.db.models import Max, Min
from django.db.models.functions import TruncDate
from django.utils import timezone

from agents.models import DecisionType
from autonomy.models import Alert, AutomationPolicy, CalibrationVersion, PhaseTransition, ReviewItem
from lab import journey
from lab.simulation import tasks_in_process
from outcomes.models import Survey
from review.dashboard import dashboard_report
from tickets.models import Ticket

CATEGORY, PRIORITY = DecisionType.CATEGORY, DecisionType.PRIORITY
# Lower bars than the product's, so sixty tickets make the journey (a threshold at target
# precision 0.9 needs more reviewed decisions than sixty tickets give: the lower bound of
# 20 right out of 20 is 0.84).
QUICK = {
    "1": {"window": 20, "min_reviewed": 12, "min_accuracy": 0.8},
    "2": {"window": 20, "min_reviewed": 12, "min_agreement": 0.75, "min_accuracy": 0.85},
}
TICKETS, DAYS, TODAY = 60, 6, 3


# Deterministic given its rows' ids (held-out tickets, review samples): fresh sequences.
@pytest.mark.django_db(transaction=True, reset_sequences=True)
def test_it_builds_a_team_some_weeks_into_its_journey_and_nothing_of_it_today(settings):
    settings.CSAI_RETRAIN_GROWTH = 100.0  # no retraining: the starter models carry the run
    call_command("seed_agents", history=120, verbosity=0, stdout=io.StringIO())
    for decision_type in (CATEGORY, PRIORITY):
        AutomationPolicy.objects.update_or_create(
            decision_type=decision_type,
            defaults={"min_samples": 10, "target_precision": 0.75, "criteria": QUICK},
        )
    out = io.StringIO()
    with tasks_in_process(full_pipeline=True):  # today's tickets are decided in process too
        call_command(
            "demo_journey", tickets=TICKETS, days=DAYS, today=TODAY, check_every=6, verbosity=0, stdout=out
        )

    # The phases, reached by promotions the monitor proposed, made by the demo supervisor.
    assert AutomationPolicy.objects.get(decision_type=CATEGORY).phase == 3, out.getvalue()
    assert AutomationPolicy.objects.get(decision_type=PRIORITY).phase == 2, out.getvalue()
    promotions = PhaseTransition.objects.filter(direction="promote").select_related("policy", "actor")
    assert {(t.policy.decision_type, t.from_phase, t.to_phase) for t in promotions} == {
        (CATEGORY, 1, 2),
        (CATEGORY, 2, 3),
        (PRIORITY, 1, 2),
    }
    assert all(t.actor.username == journey.SUPERVISOR_NAME for t in promotions)
    assert all(t.reason.startswith("As proposed:") for t in promotions)
    assert Alert.objects.filter(type=Alert.Type.PROMOTION_READY, decision_type=CATEGORY).count() >= 2
    assert CalibrationVersion.objects.filter(decision_type=CATEGORY, source="reviews").exists()

    # Every history ticket was answered in one pass by a demo reviewer, and replied to.
    history = Ticket.objects.filter(source=journey.SOURCE)
    assert history.count() == TICKETS
    assert history.filter(first_response_at__isnull=False).count() == TICKETS
    reviews = ReviewItem.objects.filter(ticket__source=journey.SOURCE)
    assert not reviews.filter(status=ReviewItem.Status.PENDING).exists()
    assert reviews.filter(decided_by__username__in=journey.REVIEWERS).count() == reviews.count() > TICKETS
    # In phase 3 category decisions were applied by the machine and reviewed afterwards.
    assert reviews.filter(decision_type=CATEGORY, kind=ReviewItem.Kind.DELAYED_REVIEW).exists()

    # Spread over the days before today: tickets, reviews, resolutions in that order.
    today = timezone.make_aware(datetime.combine(timezone.localdate(), time.min))
    span = history.aggregate(first=Min("created_at"), last=Max("created_at"))
    assert today - timedelta(days=DAYS) <= span["first"] and span["last"] < today
    assert history.annotate(day=TruncDate("created_at")).values("day").distinct().count() >= DAYS - 2
    assert reviews.aggregate(last=Max("decided_at"))["last"] < today
    assert reviews.annotate(day=TruncDate("decided_at")).values("day").distinct().count() >= DAYS - 2
    for item in reviews.select_related("ticket")[:20]:
        assert item.ticket.created_at < item.decided_at
        assert item.ticket.resolved_at is None or item.decided_at < item.ticket.resolved_at

    # Some customers answered the survey their resolution mailed them, after it, before today.
    answered = Survey.objects.filter(ticket__source=journey.SOURCE, answered_at__isnull=False)
    assert 0 < answered.count() < history.filter(resolved_at__isnull=False).count()
    for survey in answered.select_related("ticket"):
        assert survey.ticket.resolved_at <= survey.answered_at < today
        assert survey.resolved_by == Ticket.Resolver.PERSON

    # The dashboard: today is today's demo tickets only; the imported labelled tickets are no
    # work of this team; the history gives real times, not "resolved in 0 min".
    report = dashboard_report(days=30)
    assert report["now"]["tickets_today"] == TODAY == Ticket.objects.filter(source="demo").count()
    period = report["period"]
    assert period["tickets"] == TICKETS + TODAY
    assert period["resolution_hours"] > 1 and period["first_response_hours"] > 0.05
    assert 0 < period["sla_compliance"] <= 1 and period["automation_rate"] > 0
    assert report["series"][-1]["tickets"] == TODAY

    # The notice's status, and a second run builds nothing.
    assert journey.status()["state"] == "done"
    call_command("demo_journey", tickets=TICKETS, today=TODAY, verbosity=0, stdout=out)
    assert "already there" in out.getvalue()
    assert Ticket.objects.filter(source=journey.SOURCE).count() == TICKETS
    assert Ticket.objects.filter(source="demo").count() == TODAY

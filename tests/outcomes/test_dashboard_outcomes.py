"""The dashboard's outcomes on data whose answers we know: human minutes and who handled each
ticket, resolution and reopen rates, CSAT by who resolved with the difference's interval,
first response by who answered, critical errors — on the page, in JSON and in CSV."""

import csv
import io
import math
from datetime import datetime, time, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from agents.models import AgentDecision, PipelineRun
from autonomy.calibration import INTERVAL_Z
from autonomy.models import Disposition, ReviewItem
from outcomes.effort import ticket_efforts
from outcomes.models import Survey
from tests.factories import CustomerFactory, MessageFactory, TicketFactory

AI_SENT = "ai_agent"
PERSON_SENT = "cs_agent"


def _at(day_offset: int, hour: int, minute: int = 0) -> datetime:
    day = timezone.localdate() - timedelta(days=day_offset)
    return timezone.make_aware(datetime.combine(day, time(hour, minute)))


def _decision(ticket, decision_type: str = "category", *, at: datetime) -> AgentDecision:
    number = PipelineRun.objects.filter(ticket=ticket).count() + 1
    run = PipelineRun.objects.create(
        ticket=ticket, number=number, status="done", correlation_id="c", started_at=at
    )
    return AgentDecision.objects.create(
        ticket=ticket, run=run, agent="classifier", decision_type=decision_type, value={}, label="x",
        raw_confidence=0.9, reasoning="r", provider="local", latency_ms=1, correlation_id="c", created_at=at,
    )  # fmt: skip


def _auto_applied(ticket, *, at: datetime) -> Disposition:
    return Disposition.objects.create(
        decision=_decision(ticket, at=at), kind="auto_applied", phase=3, applied=True, created_at=at
    )


def _answered(ticket, user, *, claimed_at, seconds: float, decision_type="category", **fields) -> ReviewItem:
    """A review item a person answered ``seconds`` after claiming the ticket at ``claimed_at``."""
    fields = {"kind": "decide", "outcome": "confirmed", "human_label": "x", **fields}
    return ReviewItem.objects.create(
        decision=_decision(ticket, decision_type, at=claimed_at), ticket=ticket, decision_type=decision_type,
        status="done", show_suggestion=True, uncertainty=0.1, claimed_by=user,
        claimed_until=claimed_at + timedelta(minutes=10), decided_by=user,
        decided_at=claimed_at + timedelta(seconds=seconds), seconds_to_decide=seconds, created_at=claimed_at,
        **fields,
    )  # fmt: skip


def _reply(ticket, sender_kind: str, *, at: datetime):
    return MessageFactory(ticket=ticket, sender_kind=sender_kind, created_at=at)


def _surveys(ticket, resolved_by: str, scores: list[int | None], *, at: datetime) -> None:
    for score in scores:
        Survey.objects.create(
            ticket=ticket, resolved_by=resolved_by, sent_at=at, expires_at=at + timedelta(days=14),
            score=score, answered_at=at + timedelta(hours=1) if score else None,
        )  # fmt: skip


@pytest.fixture
def supervisor_client(client, supervisor):
    client.force_login(supervisor)
    return client


@pytest.fixture
def outcomes(supervisor, reviewer):
    """Two days ago:
    - A: a person's review pass of three items answered after 120, 150 and 180 s (3 min),
      one of them the reply they sent (edited) half an hour after the ticket came; resolved
      by the person. Person only, 3 min.
    - B: the AI applied its category and sent a reply (first response in 6 min) and resolved
      it. AI only, 0 min.
    Yesterday:
    - C: the AI applied its category; a reviewer's claim was left open two hours (counts
      30 min), a person wrote a reply on the ticket page (5 min, first response in 2 h), and it
      was escalated (15 min); it was resolved and reopened. AI + person, 50 min.
    Today: D, nothing yet.
    Surveys two days ago: AI-resolved 2, 2, 3 and one unanswered; person-resolved 5, 4.
    A VIP's older ticket: two sampled reviews of applied decisions yesterday, one overridden
    (a critical error).
    """
    a = TicketFactory(created_at=_at(2, 10), status="resolved", resolved_at=_at(2, 12), resolved_by="person")
    for seconds in (120, 150):
        _answered(a, reviewer, claimed_at=_at(2, 10, 20), seconds=seconds)
    _answered(
        a, reviewer, claimed_at=_at(2, 10, 20), seconds=180, decision_type="reply", human_label="edited"
    )
    _reply(a, PERSON_SENT, at=_at(2, 10, 30))
    a.first_response_at = _at(2, 10, 30)
    a.save(update_fields=["first_response_at"])

    b = TicketFactory(
        created_at=_at(2, 11), status="resolved", resolved_at=_at(2, 14), resolved_by="ai",
        first_response_at=_at(2, 11, 6),
    )  # fmt: skip
    _auto_applied(b, at=_at(2, 11, 1))
    _reply(b, AI_SENT, at=_at(2, 11, 6))

    c = TicketFactory(
        created_at=_at(1, 9), status="escalated", escalated_at=_at(1, 12), reopened_count=1,
        first_response_at=_at(1, 11),
    )  # fmt: skip
    _auto_applied(c, at=_at(1, 9, 1))
    _answered(c, reviewer, claimed_at=_at(1, 9, 10), seconds=7200)
    _reply(c, PERSON_SENT, at=_at(1, 11))

    d = TicketFactory()

    _surveys(b, "ai", [2, 2, 3, None], at=_at(2, 14))
    _surveys(a, "person", [5, 4], at=_at(2, 12))

    vip = TicketFactory(created_at=_at(40, 9), customer=CustomerFactory(is_vip=True))
    for outcome in ("overridden", "confirmed"):
        _answered(
            vip, supervisor, claimed_at=_at(1, 15), seconds=30, kind="delayed_review", outcome=outcome,
            sampling_rate=0.5,
        )  # fmt: skip
    return {"a": a, "b": b, "c": c, "d": d, "vip": vip}


def test_it_counts_the_human_minutes_and_who_handled_each_ticket(outcomes):
    efforts = ticket_efforts(start=_at(7, 0), end=_at(-1, 0))

    by_ticket = {name: efforts[outcomes[name].pk] for name in "abcd"}
    assert {name: e.minutes for name, e in by_ticket.items()} == {"a": 3, "b": 0, "c": 30 + 5 + 15, "d": 0}
    assert {name: e.attribution for name, e in by_ticket.items()} == {
        "a": "person_only",
        "b": "ai_only",
        "c": "ai_and_person",
        "d": "untouched",
    }
    assert (by_ticket["a"].replies_outside_review, by_ticket["c"].replies_outside_review) == (0, 1)
    assert by_ticket["c"].review_minutes == 30  # the two-hour claim, capped
    assert outcomes["vip"].pk not in efforts  # created before the period


def test_the_review_cap_and_estimates_come_from_the_settings(outcomes, settings):
    settings.CSAI_EFFORT_REVIEW_CAP_MINUTES = 60
    settings.CSAI_EFFORT_REPLY_MINUTES = 2
    settings.CSAI_EFFORT_ESCALATION_MINUTES = 0

    efforts = ticket_efforts(start=_at(7, 0), end=_at(-1, 0))

    assert efforts[outcomes["c"].pk].minutes == 60 + 2


def _expected_difference():
    ai_mean, person_mean = 7 / 3, 4.5
    ai_var = ((2 - ai_mean) ** 2 * 2 + (3 - ai_mean) ** 2) / 2
    person_var = ((5 - 4.5) ** 2 + (4 - 4.5) ** 2) / 1
    margin = INTERVAL_Z * math.sqrt(ai_var / 3 + person_var / 2)
    value = ai_mean - person_mean
    return value, value - margin, value + margin


def test_the_dashboard_json_has_the_outcomes_of_the_period(supervisor_client, outcomes):
    data = supervisor_client.get("/supervisor/dashboard/", {"days": 7, "format": "json"}).json()
    period = data["period"]
    o = period["outcomes"]

    assert (o["resolved"], o["ai_resolved"], o["person_resolved"]) == (2, 1, 1)
    assert o["ai_resolution_rate"] == 0.5
    assert (o["reopened"], o["reopen_rate"]) == (1, pytest.approx(1 / 3))  # of A, B and C
    assert o["human_minutes"] == 53
    assert o["human_minutes_per_ticket"] == pytest.approx(53 / 4)
    assert o["human_hours_per_100_tickets"] == pytest.approx(53 / 4 * 100 / 60)
    assert o["handled_by"] == {"ai_only": 1, "ai_and_person": 1, "person_only": 1, "untouched": 1}
    assert o["effort"] == {"review_minutes": 33, "replies_outside_review": 1, "escalations": 1}
    assert o["first_response_hours"] == {
        "ai": pytest.approx(0.1),
        "ai_n": 1,
        "person": pytest.approx((0.5 + 2) / 2),
        "person_n": 2,
    }
    csat = o["csat"]
    assert csat["ai"] == {"n": 3, "mean": pytest.approx(7 / 3), "sent": 4, "response_rate": 0.75}
    assert csat["person"] == {"n": 2, "mean": 4.5, "sent": 2, "response_rate": 1.0}
    value, low, high = _expected_difference()
    assert csat["difference"] == {
        "value": pytest.approx(value),
        "low": pytest.approx(low),
        "high": pytest.approx(high),
    }
    assert high < 0 and csat["verdict"] == "worse"
    assert (period["critical_errors"], period["reviewed_autonomous"]) == (1, 2)
    assert period["time_saved"]["saved"] is None  # 7 days: no two weeks to compare

    days = {row["day"]: row for row in data["series"]}
    two_days_ago, yesterday = days[_at(2, 0).date().isoformat()], days[_at(1, 0).date().isoformat()]
    assert (two_days_ago["resolved"], two_days_ago["ai_resolution_rate"], two_days_ago["reopen_rate"]) == (
        2,
        0.5,
        0,
    )
    assert two_days_ago["human_minutes_per_ticket"] == 1.5 and yesterday["human_minutes_per_ticket"] == 50
    assert two_days_ago["csat_ai"] == pytest.approx(7 / 3) and two_days_ago["csat_person_n"] == 2
    assert yesterday["critical_errors"] == 1 and yesterday["handled_ai_and_person"] == 1
    assert yesterday["first_response_hours_person"] == 2 and yesterday["first_response_hours_ai"] is None


def test_the_time_saved_compares_the_first_week_with_the_last_full_week(supervisor_client, outcomes):
    # The first week of a 21-day period: one escalated ticket with two replies from the
    # ticket page (25 min). The last full week (before today): A, B and C, 53 min for 3.
    first = TicketFactory(created_at=_at(19, 9), escalated_at=_at(19, 10))
    _reply(first, PERSON_SENT, at=_at(19, 11))
    _reply(first, PERSON_SENT, at=_at(19, 12))

    saved = supervisor_client.get("/supervisor/dashboard/", {"days": 21, "format": "json"}).json()["period"][
        "time_saved"
    ]

    assert (saved["first_week"], saved["first_week_tickets"]) == (25, 1)
    assert saved["last_week"] == pytest.approx(53 / 3) and saved["last_week_tickets"] == 3
    assert saved["saved"] == pytest.approx(1 - (53 / 3) / 25) and saved["less"] is True
    html = supervisor_client.get("/supervisor/dashboard/", {"days": 21}).content.decode()
    assert "People spent <strong>17.7 min</strong> per ticket in the last full week against 25.0 min" in html
    assert "<strong>29 % less</strong> human time per ticket" in html


def test_the_dashboard_page_shows_the_headline_and_the_outcome_charts(supervisor_client, outcomes):
    html = supervisor_client.get("/supervisor/dashboard/", {"days": 7}).content.decode()

    assert "Is more automation costing satisfaction?</strong>" in html
    assert "Yes: AI-resolved tickets are rated lower than person-resolved ones (95 % confidence)." in html
    assert (
        "CSAT <strong>2.33</strong> AI-resolved (n=3) against <strong>4.50</strong> person-resolved (n=2)"
        in html
    )
    value, low, high = _expected_difference()
    assert f"difference −{abs(value):.2f}, 95 % interval −{abs(low):.2f} to −{abs(high):.2f}" in html
    assert "The AI resolved <strong>50 %</strong> of 2 resolved tickets; 33 % were reopened." in html
    assert "<strong>1</strong> critical error among 2 reviewed autonomous decisions." in html
    assert "13.2 min" in html  # human time per ticket, 53 min for 4 tickets
    for chart in ("csat", "resolution", "effort", "first-response", "csat-response", "critical"):
        assert f'id="outcome-{chart}"' in html
    assert 'aria-label="Customer satisfaction (CSAT 1–5, the 7 days to each day), by day"' in html
    assert '<li class="s1">AI-resolved</li><li class="s2">Person-resolved</li>' in html


def test_the_dashboard_csv_has_the_outcomes_by_day(supervisor_client, outcomes):
    response = supervisor_client.get("/supervisor/dashboard/", {"days": 3, "format": "csv"})
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))

    assert [row["day"] for row in rows] == [_at(d, 0).date().isoformat() for d in (2, 1, 0)]
    two_days_ago, yesterday, today = rows
    assert (two_days_ago["ai_resolved"], two_days_ago["ai_resolution_rate"]) == ("1", "0.5")
    assert (two_days_ago["csat_ai_n"], two_days_ago["csat_ai_response_rate"]) == ("3", "0.75")
    assert yesterday["human_minutes"] == "50.0" and yesterday["reopened"] == "1"
    assert yesterday["critical_errors"] == "1"
    assert today["not_handled_yet"] == "1" and today["human_minutes_per_ticket"] == "0.0"


def test_the_outcomes_take_as_many_queries_with_more_tickets_and_days(supervisor_client, outcomes, reviewer):
    def queries(days: int) -> int:
        with CaptureQueriesContext(connection) as captured:
            assert supervisor_client.get("/supervisor/dashboard/", {"days": days}).status_code == 200
        return len(captured)

    few = queries(7)
    for offset in range(1, 6):  # more tickets, on more days, with every kind of outcome
        ticket = TicketFactory(created_at=_at(offset, 8), resolved_at=_at(offset, 9), resolved_by="ai")
        _auto_applied(ticket, at=_at(offset, 8, 1))
        _answered(ticket, reviewer, claimed_at=_at(offset, 8, 5), seconds=60)
        _reply(ticket, AI_SENT, at=_at(offset, 8, 2))
        _surveys(ticket, "ai", [4, None], at=_at(offset, 9))
    assert queries(7) == few == queries(90)

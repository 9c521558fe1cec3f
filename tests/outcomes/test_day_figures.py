"""The dashboard's stored days (outcomes.DayFigures): after a refresh, the report read from them
is the report computed from the rows, also when old tickets, surveys and reviews change."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from autonomy.models import ReviewItem
from outcomes import day_figures
from outcomes.models import DayFigures, DayFiguresMark, Survey
from outcomes.services import ImportedAnswer, surveys_import
from review.dashboard import dashboard_report
from tests.factories import TicketFactory
from tests.outcomes.test_dashboard_outcomes import AI_SENT, PERSON_SENT, _answered, _at, _auto_applied, _reply


def _old_work(reviewer) -> dict:
    """Tickets 60, 20 and 3 days ago, each with the outcomes that can still change."""
    old = TicketFactory(created_at=_at(60, 9))
    _auto_applied(old, at=_at(60, 9, 1))
    _reply(old, AI_SENT, at=_at(60, 9, 5))
    pending = _answered(old, reviewer, claimed_at=_at(60, 10), seconds=90)
    ReviewItem.objects.filter(pk=pending.pk).update(
        status="pending", decided_by=None, decided_at=None, seconds_to_decide=None
    )
    resolved = TicketFactory(
        created_at=_at(20, 9), status="resolved", resolved_at=_at(20, 11), resolved_by="ai",
        first_response_at=_at(20, 9, 30),
    )  # fmt: skip
    _reply(resolved, AI_SENT, at=_at(20, 9, 30))
    survey = Survey.objects.create(
        ticket=resolved, resolved_by="ai", sent_at=_at(20, 11), expires_at=_at(20, 11) + timedelta(days=30)
    )
    recent = TicketFactory(
        created_at=_at(3, 9), status="resolved", resolved_at=_at(3, 10), resolved_by="person"
    )
    _reply(recent, PERSON_SENT, at=_at(3, 9, 20))
    TicketFactory()  # today
    return {"old": old, "pending": pending, "survey": survey, "resolved": resolved}


def _period(report: dict) -> dict:
    return report["period"]["outcomes"]


def test_it_reads_the_same_report_from_the_stored_days_as_from_the_rows(reviewer):
    work = _old_work(reviewer)
    assert day_figures.day_figures_refresh() == f"days:{day_figures.HORIZON_DAYS}"
    before = dashboard_report(days=90)
    assert before == dashboard_report(days=90, live=True)
    assert DayFigures.objects.filter(day=_at(60, 0).date()).exists()

    now = timezone.now()
    old = work["old"]  # resolved by a person today, 60 days after it came
    old.status, old.resolved_at, old.resolved_by = "resolved", now, "person"
    old.save(update_fields=["status", "resolved_at", "resolved_by", "updated_at"])
    work["survey"].score, work["survey"].answered_at = 2, now  # answered today, sent 20 days ago
    work["survey"].save(update_fields=["score", "answered_at"])
    ReviewItem.objects.filter(pk=work["pending"].pk).update(  # its review decided today
        status="done", decided_by=reviewer, decided_at=now, seconds_to_decide=600
    )
    stale = dashboard_report(days=90)
    assert _period(stale) == _period(before)  # the stored days until the refresh

    # 60 and 20 days ago, and the days of the tickets this test wrote minutes ago (3, today)
    assert day_figures.day_figures_refresh() == "days:4"
    after = dashboard_report(days=90)
    assert after == dashboard_report(days=90, live=True)
    assert _period(after)["person_resolved"] == _period(before)["person_resolved"] + 1
    assert _period(after)["csat"]["ai"]["n"] == 1
    assert _period(after)["effort"]["review_minutes"] == 10


def test_a_day_not_stored_is_computed_and_stored_by_the_page(reviewer):
    _old_work(reviewer)
    assert not DayFigures.objects.exists()
    assert dashboard_report(days=30) == dashboard_report(days=30, live=True)
    assert DayFigures.objects.count() == 28  # the 30 days but today and yesterday
    DayFigures.objects.filter(day=_at(3, 0).date()).delete()
    assert dashboard_report(days=30) == dashboard_report(days=30, live=True)
    assert DayFigures.objects.count() == 28


def test_the_dashboard_reads_as_many_queries_with_days_stored_or_not(reviewer):
    _old_work(reviewer)

    def queries(days: int) -> int:
        with CaptureQueriesContext(connection) as captured:
            dashboard_report(days=days)
        return len(captured)

    first = queries(90)  # every day computed and stored
    assert queries(90) == first == queries(7) == queries(365)


def test_an_imported_csat_history_is_looked_at_again(reviewer):
    work = _old_work(reviewer)
    day_figures.day_figures_refresh()
    answer = ImportedAnswer(
        line=1, ticket_id=work["resolved"].pk, score=5, comment="", answered_at=_at(20, 15), resolved_by="ai"
    )
    surveys_import(answers=[answer])
    assert DayFiguresMark.objects.get().seen_until == _at(20, 15)
    day_figures.day_figures_refresh()
    assert dashboard_report(days=90) == dashboard_report(days=90, live=True)


@pytest.mark.parametrize("tz", ["UTC", "America/New_York"])
def test_days_of_another_time_zone_are_not_read(reviewer, tz):
    _old_work(reviewer)
    day_figures.day_figures_refresh()
    with timezone.override(tz):
        assert dashboard_report(days=90) == dashboard_report(days=90, live=True)

"""The numbers on the calibration report and the dashboard, from data whose answers we know."""

import csv
import io
from datetime import datetime, time, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from agents.services import HistoryRow, history_import
from autonomy.calibration import wilson_interval
from autonomy.models import AutomationPolicy
from autonomy.services import controller
from tests.factories import TicketFactory
from tests.review.conftest import make_item, set_phase

BILLING, TECHNICAL = "BILLING_INQUIRY", "TECHNICAL_ISSUE"


def _decided(supervisor, *, label: str, confidence: float, answer: str, phase: int = 2, ticket=None):
    item = make_item(
        phase=phase, confidence=confidence, label=label, value={"category": label}, ticket=ticket
    )
    controller.review_item_answer(item=item, actor=supervisor, label=answer)
    return item


@pytest.fixture
def reviewed(supervisor):
    """20 reviewed category decisions (identity calibration: calibrated = raw):
    10 BILLING at 0.9, 9 of them right (1 was TECHNICAL); 10 TECHNICAL at 0.5, 5 right."""
    set_phase("category", 2)
    AutomationPolicy.objects.filter(decision_type="category").update(min_samples=5, target_precision=0.6)
    for i in range(10):
        _decided(supervisor, label=BILLING, confidence=0.9, answer=TECHNICAL if i == 0 else BILLING)
        _decided(supervisor, label=TECHNICAL, confidence=0.5, answer=TECHNICAL if i % 2 else BILLING)


def test_the_calibration_report_measures_the_reviewed_decisions(supervisor_client, reviewed):
    html = supervisor_client.get("/supervisor/calibration/", {"decision_type": "category"}).content.decode()
    assert "Category: 20 reviewed decisions" in html
    assert "70.0 %" in html  # accuracy 14 / 20
    assert "0.170" in html  # Brier: (9·0.01 + 0.81 + 10·0.25) / 20
    assert "Reliability diagram" in html and "<title>Reliability diagram" in html
    # Per class: BILLING precision 9/10, recall 9/14; TECHNICAL precision 5/10, recall 5/6.
    assert '<th scope="row">Billing Inquiry</th><td class="n">90.0 %</td><td class="n">64.3 %</td>' in html
    assert '<th scope="row">Technical Issue</th><td class="n">50.0 %</td><td class="n">83.3 %</td>' in html


def test_the_calibration_numbers_and_threshold_suggestion(supervisor_client, reviewed):
    def report(target):
        response = supervisor_client.get(
            "/supervisor/calibration/", {"decision_type": "category", "target": target, "format": "json"}
        )
        return response.json()

    data = report(0.6)
    assert data["n"] == 20 and data["eligible"] == 20 and data["accuracy"] == pytest.approx(0.7)
    assert data["ece"] == pytest.approx(0.0) and data["brier"] == pytest.approx(0.17)
    bins = {(b["low"], b["n"]): (b["confidence"], b["accuracy"]) for b in data["bins"]}
    assert bins == {(0.5, 10): pytest.approx((0.5, 0.5)), (0.9, 10): pytest.approx((0.9, 0.9))}
    # Wilson lower bound (one-sided 95 %): 9/10 → 0.652 ≥ 0.6, 14/20 → 0.516 < 0.6.
    assert data["suggested"] == {"threshold": 0.9, "coverage": 0.5, "precision": 0.9, "n": 10}
    assert data["current"]["threshold"] == 0.8 and data["current"]["coverage"] == 0.5
    assert report(0.5)["suggested"]["threshold"] == 0.5
    assert report(0.7)["suggested"]["threshold"] is None
    curve = {round(p["coverage"], 3): p["risk"] for p in data["curve"]}
    assert curve[0.5] == pytest.approx(0.1) and curve[1.0] == pytest.approx(0.3)
    # Rows: the people's answer; columns: the AI's.
    assert data["confusion"]["labels"] == [BILLING, TECHNICAL]
    assert data["confusion"]["rows"] == [[9, 5], [1, 5]]
    assert data["pairs"] == [
        {"predicted": TECHNICAL, "truth": BILLING, "n": 5},
        {"predicted": BILLING, "truth": TECHNICAL, "n": 1},
    ]
    assert data["calibration"]["method"] == "identity"


def test_the_calibration_csv_is_the_per_class_table(supervisor_client, reviewed):
    response = supervisor_client.get(
        "/supervisor/calibration/", {"decision_type": "category", "format": "csv"}
    )
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert response["Content-Disposition"] == 'attachment; filename="calibration-category.csv"'
    assert [(r["label"], r["support"], r["predicted"]) for r in rows] == [
        (BILLING, "14", "10"),
        (TECHNICAL, "6", "10"),
    ]
    assert float(rows[0]["precision"]) == pytest.approx(0.9)


def test_the_calibration_report_says_when_there_is_nothing_yet(supervisor_client, db):
    html = supervisor_client.get("/supervisor/calibration/", {"decision_type": "reply"}).content.decode()
    assert "Reply: 0 reviewed decisions" in html and "No threshold reaches" in html


def test_a_bad_target_is_400(supervisor_client, db):
    response = supervisor_client.get("/supervisor/calibration/", {"target": "2"})
    assert response.status_code == 400 and "cannot be made" in response.content.decode()


# --- dashboard -----------------------------------------------------------------------------


def _at(day_offset: int, hour: int) -> datetime:
    day = timezone.localdate() - timedelta(days=day_offset)
    return timezone.make_aware(datetime.combine(day, time(hour)))


@pytest.fixture
def tickets(supervisor):
    """Two days ago: one answered in 1 h and resolved in 5 h (on time), one answered in 10 h
    (8 h allowed: breached) and escalated. Today: one new ticket with three decisions, two
    applied automatically; of those two sampled reviews one was confirmed."""
    created = _at(2, 10)
    TicketFactory(
        created_at=created, first_response_at=created + timedelta(hours=1),
        resolved_at=created + timedelta(hours=5), status="resolved",
    )  # fmt: skip
    late = _at(2, 11)
    TicketFactory(
        created_at=late, first_response_at=late + timedelta(hours=10), status="escalated",
        escalated_at=late + timedelta(hours=2), resolution_due=timezone.now() + timedelta(days=1),
    )  # fmt: skip
    today = TicketFactory()
    _decided(supervisor, label=BILLING, confidence=0.6, answer=BILLING, ticket=today)  # phase 2: suggested
    _decided(supervisor, label=BILLING, confidence=0.9, answer=BILLING, phase=3, ticket=today)
    _decided(supervisor, label=BILLING, confidence=0.95, answer=TECHNICAL, phase=3, ticket=today)
    return today


def test_the_dashboard_figures_for_known_tickets(supervisor_client, tickets):
    data = supervisor_client.get("/supervisor/dashboard/", {"days": 7, "format": "json"}).json()
    assert data["now"] == {"tickets_today": 1, "open": 2, "escalated": 1}
    period = data["period"]
    assert (period["tickets"], period["escalated"]) == (3, 1)
    assert period["escalation_rate"] == pytest.approx(1 / 3)
    assert period["sla_compliance"] == pytest.approx(2 / 3)
    assert period["first_response_hours"] == pytest.approx(5.5)
    assert period["resolution_hours"] == pytest.approx(5.0)
    assert (period["decisions"], period["autonomous"]) == (3, 2)
    assert period["automation_rate"] == pytest.approx(2 / 3)
    low, high = wilson_interval(0.5, 2)
    assert period["autonomous_accuracy"] == {"value": 0.5, "low": low, "high": high, "n": 2}

    days = {row["day"]: row for row in data["series"]}
    assert len(days) == 7
    two_days_ago = days[_at(2, 0).date().isoformat()]
    assert (two_days_ago["tickets"], two_days_ago["escalated"], two_days_ago["open_at_end_of_day"]) == (
        2,
        1,
        1,
    )
    assert two_days_ago["sla_compliance"] == 0.5 and two_days_ago["avg_first_response_hours"] == 5.5
    assert two_days_ago["automation_rate"] is None
    today = days[timezone.localdate().isoformat()]
    assert (today["tickets"], today["open_at_end_of_day"], today["decisions"], today["autonomous"]) == (
        1,
        2,
        3,
        2,
    )
    assert today["autonomous_accuracy"] == 0.5 and today["autonomous_accuracy_n"] == 2


def test_the_dashboard_page_shows_the_figures_and_a_chart_each(supervisor_client, tickets):
    html = supervisor_client.get("/supervisor/dashboard/", {"days": 7}).content.decode()
    assert "33.3 %" in html  # escalation rate, SLA (66.7 %) and automation rate (66.7 %)
    assert "66.7 %" in html and "5.5 h" in html and "5.0 h" in html
    assert html.count('<svg class="chart"') == 8 + 6  # operations, outcomes
    assert 'aria-label="Automation rate, by day"' in html
    assert "Every figure by day, as a table" in html


def test_the_dashboard_csv_has_a_row_per_day(supervisor_client, tickets):
    response = supervisor_client.get("/supervisor/dashboard/", {"days": 3, "format": "csv"})
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert [row["day"] for row in rows] == [_at(d, 0).date().isoformat() for d in (2, 1, 0)]
    assert rows[0]["tickets"] == "2" and rows[0]["escalation_rate"] == "0.5" and rows[2]["decisions"] == "3"


def test_the_dashboard_does_not_query_per_ticket_or_per_day(supervisor_client, tickets):
    def queries(days):
        with CaptureQueriesContext(connection) as captured:
            supervisor_client.get("/supervisor/dashboard/", {"days": days})
        return len(captured)

    few = queries(7)
    for _ in range(10):
        TicketFactory(created_at=_at(1, 9))
    assert queries(7) == few == queries(90)


@pytest.mark.parametrize("days", ["0", "366", "many"])
def test_bad_days_are_400(supervisor_client, days, db):
    assert supervisor_client.get("/supervisor/dashboard/", {"days": days}).status_code == 400


def test_the_autonomy_readiness_exports(supervisor_client, reviewed):
    rows = list(
        csv.DictReader(
            io.StringIO(supervisor_client.get("/supervisor/autonomy/", {"format": "csv"}).content.decode())
        )
    )
    assert [(r["decision_type"], r["phase"], r["reviewed"], r["agreement_rate"]) for r in rows] == [
        ("category", "2", "20", "0.7")
    ]
    assert "reviewed decisions 20 < 200" in rows[0]["blockers"]
    data = supervisor_client.get("/supervisor/autonomy/", {"format": "json"}).json()
    assert data["policies"][0]["blockers"][0] == "reviewed decisions 20 < 200"
    assert data["policies"][0]["criteria"]["min_reviewed"] == 200


def test_calibration_queries_do_not_grow_with_the_reviewed_decisions(supervisor_client, supervisor):
    set_phase("category", 2)

    def queries():
        with CaptureQueriesContext(connection) as captured:
            supervisor_client.get("/supervisor/calibration/", {"decision_type": "category"})
        return len(captured)

    _decided(supervisor, label=BILLING, confidence=0.9, answer=BILLING)
    few = queries()
    for _ in range(8):
        _decided(supervisor, label=TECHNICAL, confidence=0.6, answer=BILLING)
    assert queries() == few


def test_imported_history_is_no_work_of_the_team_on_the_dashboard(supervisor_client, db):
    rows = [HistoryRow(external_id=f"h{i}", subject="Old", body="Old ticket", labels={}) for i in range(5)]
    history_import(rows=rows, source="old-helpdesk")  # stored as tickets created and resolved now
    TicketFactory()

    data = supervisor_client.get("/supervisor/dashboard/", {"days": 7, "format": "json"}).json()

    assert data["now"]["tickets_today"] == 1
    assert data["period"]["tickets"] == 1 and data["period"]["resolved"] == 0
    assert data["period"]["resolution_hours"] is None  # not "resolved in 0 min"

"""The reply's CSAT criterion on the autonomy page, its confirm step and its exports."""

import csv
import io

from autonomy.models import AutomationPolicy
from outcomes.models import Survey
from tests.autonomy.test_csat import AI, BETTER, PERSON, WORSE, answers
from tests.factories import TicketFactory
from tests.review.conftest import set_phase


def test_the_autonomy_page_shows_csat_for_the_reply_and_its_blocker(supervisor_client):
    tickets = [TicketFactory() for _ in range(3)]
    answers(tickets, AI, WORSE)
    answers(tickets, PERSON, BETTER)
    set_phase("reply", 3)
    set_phase("category", 3)

    html = supervisor_client.get("/supervisor/autonomy/").content.decode()

    assert "Customers (CSAT)" in html
    assert '3.00 <small class="muted">AI, n=60</small>' in html
    assert '4.67 <small class="muted">people, n=60</small>' in html
    assert "CSAT of AI-resolved tickets 3.00 against 4.67 person-resolved" in html  # a blocker
    # The confirm step of a promotion lists it with the other unmet criteria.
    confirm = supervisor_client.post("/supervisor/autonomy/reply/promote/", {"reason": "r", "from_phase": 3})
    assert "CSAT of AI-resolved tickets 3.00" in confirm.content.decode()

    rows = {r["decision_type"]: r for r in csv.DictReader(io.StringIO(
        supervisor_client.get("/supervisor/autonomy/", {"format": "csv"}).content.decode()
    ))}  # fmt: skip
    assert (rows["reply"]["csat_ai_n"], rows["reply"]["csat_person_mean"][:4]) == ("60", "4.66")
    assert rows["category"]["csat_ai_n"] == ""
    data = supervisor_client.get("/supervisor/autonomy/", {"format": "json"}).json()
    reply = next(p for p in data["policies"] if p["decision_type"] == "reply")
    assert reply["csat"]["ai"] == {"n": 60, "mean": 3.0}
    assert reply["criteria"]["csat_max_drop"] == 0.2
    assert AutomationPolicy.objects.get(decision_type="reply").phase == 3
    assert Survey.objects.count() == 120

"""GET /api/v1/tickets/<id>/decisions/: the agents' decisions, for those allowed to see tickets."""

import pytest
from django.utils import timezone

from agents.models import AgentDecision, PipelineRun
from tests.conftest import token_client
from tests.factories import TicketFactory


@pytest.fixture
def decided_ticket(db):
    ticket = TicketFactory()
    run = PipelineRun.objects.create(ticket=ticket, number=1, correlation_id="c1", started_at=timezone.now())
    AgentDecision.objects.create(
        ticket=ticket, run=run, agent="classifier", decision_type="category",
        value={"category": "BUG_REPORT"}, label="BUG_REPORT", raw_confidence=0.83,
        reasoning="Local model: BUG_REPORT", provider="local",
        latency_ms=1.2, correlation_id="c1", created_at=timezone.now(),
    )  # fmt: skip
    return ticket


def url(ticket_id: int) -> str:
    return f"/api/v1/tickets/{ticket_id}/decisions/"


def test_a_reviewer_sees_the_decisions_with_confidence_and_reasoning(reviewer, decided_ticket):
    response = token_client(reviewer).get(url(decided_ticket.pk))
    assert response.status_code == 200
    (decision,) = response.json()
    assert decision["decision_type"] == "category"
    assert decision["value"] == {"category": "BUG_REPORT"}
    assert decision["raw_confidence"] == 0.83
    assert decision["calibrated_confidence"] is None
    assert decision["run"] == 1


def test_anonymous_callers_and_outsiders_are_refused(client, outsider, decided_ticket):
    assert client.get(url(decided_ticket.pk)).status_code in (401, 403)
    assert token_client(outsider).get(url(decided_ticket.pk)).status_code == 403


def test_a_missing_ticket_is_404_and_writing_is_405(reviewer, decided_ticket):
    api = token_client(reviewer)
    assert api.get(url(decided_ticket.pk + 1000)).status_code == 404
    assert api.post(url(decided_ticket.pk), {}).status_code == 405


def test_decisions_are_append_only(decided_ticket):
    decision = AgentDecision.objects.get()
    decision.label = "FEATURE_REQUEST"
    with pytest.raises(ValueError, match="append-only"):
        decision.save()
    decision.refresh_from_db()
    decision.calibrated_confidence = 0.7
    decision.save(update_fields=["calibrated_confidence"])


def test_supervisors_audit_decisions_and_retry_dead_letters_in_the_admin(client, supervisor, reviewer):
    supervisor.is_staff = True
    supervisor.save(update_fields=["is_staff"])
    client.force_login(supervisor)
    for page in ("agentdecision", "pipelinerun", "deadletter", "outage", "knowledgearticle"):
        assert client.get(f"/admin/agents/{page}/").status_code == 200, page
    assert supervisor.has_perm("agents.change_deadletter")
    assert not reviewer.has_perm("agents.change_deadletter")
    assert not supervisor.has_perm("agents.change_agentdecision")  # the audit trail stays as written

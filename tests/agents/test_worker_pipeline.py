"""Real worker processes run the whole pipeline from the webhook on; a killed one loses nothing."""

import signal
from datetime import timedelta

import pytest

from agents import tasks
from agents.models import AgentDecision, DeadLetter, DecisionType, PipelineRun
from tests.conftest import purge_queues, signed_post, start_worker, ticket_payload, token_client
from tickets import tasks as ticket_tasks

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]


def test_a_webhook_ticket_gets_all_four_agents_decisions(client, reviewer, trained_models, knowledge, worker):
    purge_queues()
    response = signed_post(client, ticket_payload())
    ticket_id = response.json()["ticket_id"]

    def decided():
        return AgentDecision.objects.filter(ticket_id=ticket_id).count() == len(DecisionType)

    assert worker.wait_for(decided), worker.output()
    listed = token_client(reviewer).get(f"/api/v1/tickets/{ticket_id}/decisions/").json()
    assert {d["decision_type"] for d in listed} == set(DecisionType.values)
    assert {d["agent"] for d in listed} == {"classifier", "selector", "escalation", "updates"}


def test_a_worker_killed_mid_pipeline_loses_no_ticket_and_doubles_no_decision(
    client, trained_models, knowledge, tmp_path, monkeypatch
):
    purge_queues()
    ticket_ids = [
        signed_post(client, ticket_payload(external_id=f"KILL-{n}")).json()["ticket_id"] for n in range(30)
    ]
    first = start_worker(tmp_path / "first.log")
    assert first.wait_for(lambda: AgentDecision.objects.exists()), first.output()
    first.process.send_signal(signal.SIGKILL)
    first.process.wait(timeout=30)
    finished = PipelineRun.objects.filter(status=PipelineRun.Status.DONE).count()
    assert finished < len(ticket_ids), "the worker finished everything before it was killed"

    # The killed worker's messages stay unacknowledged until the broker's visibility
    # timeout; the sweeps (every minute or two in production) do not wait that long. One of
    # them may be a ticket's intake, which only the intake sweep sends again.
    monkeypatch.setattr(tasks, "RUN_GRACE", timedelta(0))
    monkeypatch.setattr(tasks, "TRIAGE_GRACE", timedelta(0))
    monkeypatch.setattr(ticket_tasks, "INTAKE_GRACE", timedelta(0))
    ticket_tasks.intake_sweep()
    tasks.pipeline_sweep()
    second = start_worker(tmp_path / "second.log")
    try:
        done = PipelineRun.objects.filter(ticket_id__in=ticket_ids, status=PipelineRun.Status.DONE)
        assert second.wait_for(lambda: done.count() == len(ticket_ids)), second.output()
    finally:
        second.process.terminate()
        second.process.wait(timeout=30)

    for ticket_id in ticket_ids:
        decided = AgentDecision.objects.filter(ticket_id=ticket_id).values_list("decision_type", flat=True)
        assert sorted(decided) == sorted(DecisionType.values)
    assert PipelineRun.objects.count() == len(ticket_ids)
    assert not DeadLetter.objects.exists()

"""Surviving the infrastructure: a step retries through a broker or database outage, a run
that died of one is finished by the sweep once it is back, and no decision is left without
a disposition (issue 15, defects 3 and 4)."""

import logging
from datetime import timedelta

import kombu.exceptions
from django.db import OperationalError
from django.utils import timezone

from agents import proposers, tasks
from agents.models import AgentDecision, DeadLetter, PipelineRun
from autonomy import tasks as autonomy_tasks
from autonomy.models import Disposition
from tests.agents.test_pipeline import ALL_TYPES, decided_types, run_pipeline
from tests.factories import TicketFactory


def failing(error: Exception, *, times: int):
    """The real classifier, after ``times`` calls that fail with ``error``."""
    real = proposers.classify_category
    calls = []

    def classify(ctx):
        calls.append(ctx.ticket_id)
        if len(calls) <= times:
            raise error
        return real(ctx)

    return classify, calls


def disposed_once(ticket) -> bool:
    decisions = AgentDecision.objects.filter(ticket=ticket)
    return all(Disposition.objects.filter(decision=d).count() == 1 for d in decisions)


def test_a_broker_error_in_a_step_is_retried_not_dead_lettered(
    triaged_ticket, trained_models, knowledge, eager_celery, monkeypatch, django_capture_on_commit_callbacks
):
    classify, calls = failing(kombu.exceptions.OperationalError("Error 111 connecting to redis"), times=2)
    monkeypatch.setattr(proposers, "classify_category", classify)

    run_pipeline(triaged_ticket, django_capture_on_commit_callbacks)

    assert len(calls) == 3
    assert not DeadLetter.objects.exists()
    assert decided_types(triaged_ticket) == ALL_TYPES and disposed_once(triaged_ticket)
    assert PipelineRun.objects.get().status == PipelineRun.Status.DONE


def test_a_run_dead_of_the_infrastructure_is_finished_by_the_sweep_once_it_is_back(
    triaged_ticket, trained_models, knowledge, eager_celery, monkeypatch, django_capture_on_commit_callbacks
):
    classify, _ = failing(OperationalError("the database system is starting up"), times=tasks.MAX_TRIES)
    monkeypatch.setattr(proposers, "classify_category", classify)
    run_pipeline(triaged_ticket, django_capture_on_commit_callbacks)
    assert PipelineRun.objects.get().status == PipelineRun.Status.DEAD

    with django_capture_on_commit_callbacks(execute=True):  # the database is back
        assert tasks.pipeline_sweep.apply().get() == "nudged:0 started:0 retried:1"

    assert PipelineRun.objects.get().status == PipelineRun.Status.DONE
    assert decided_types(triaged_ticket) == ALL_TYPES and disposed_once(triaged_ticket)
    assert DeadLetter.objects.get().retried_by is None  # the system retried it, not a person


def test_a_run_dead_of_a_bug_stays_dead_for_a_person(
    triaged_ticket, trained_models, knowledge, eager_celery, monkeypatch, django_capture_on_commit_callbacks
):
    monkeypatch.setattr(proposers, "select_strategy", lambda *a, **k: 1 / 0)
    run_pipeline(triaged_ticket, django_capture_on_commit_callbacks)

    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.pipeline_sweep.apply().get() == "nudged:0 started:0 retried:0"

    assert PipelineRun.objects.get().status == PipelineRun.Status.DEAD
    assert DeadLetter.objects.get().retried_at is None


def test_a_run_that_keeps_dying_of_the_infrastructure_is_left_to_people(db):
    run = PipelineRun.objects.create(
        ticket=TicketFactory(), number=1, status="dead", correlation_id="c", started_at=timezone.now()
    )
    for _ in range(tasks.SWEEP_RETRIES + 1):
        DeadLetter.objects.create(
            run=run, ticket=run.ticket, task_name="agents.tasks.classify_step", task_args=[run.pk],
            error_type="OperationalError", error_message="gone", attempts=10, created_at=timezone.now(),
        )  # fmt: skip

    assert tasks.pipeline_sweep.apply().get() == "nudged:0 started:0 retried:0"


def test_a_dead_letter_that_cannot_be_written_leaves_the_run_for_the_sweep(
    triaged_ticket, trained_models, knowledge, eager_celery, monkeypatch, django_capture_on_commit_callbacks,
    caplog,
):  # fmt: skip
    classify, _ = failing(OperationalError("server closed the connection"), times=tasks.MAX_TRIES)
    monkeypatch.setattr(proposers, "classify_category", classify)

    def database_down(**_):
        raise OperationalError("could not connect to server: Connection refused")

    monkeypatch.setattr(tasks.services, "dead_letter_record", database_down)
    with caplog.at_level(logging.ERROR, logger="agents.tasks"):
        run_pipeline(triaged_ticket, django_capture_on_commit_callbacks)

    assert "dead letter not written" in caplog.text
    run = PipelineRun.objects.get()
    assert run.status == PipelineRun.Status.RUNNING and not DeadLetter.objects.exists()

    monkeypatch.undo()  # the database is back; the run went quiet
    PipelineRun.objects.filter(pk=run.pk).update(updated_at=timezone.now() - timedelta(hours=1))
    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.pipeline_sweep.apply().get() == "nudged:1 started:0 retried:0"

    assert decided_types(triaged_ticket) == ALL_TYPES and disposed_once(triaged_ticket)


def test_decisions_whose_submission_was_lost_get_exactly_one_disposition_from_the_sweep(
    triaged_ticket, trained_models, knowledge, eager_celery, monkeypatch, django_capture_on_commit_callbacks
):
    # A worker killed between recording the decisions and handing them to the controller.
    monkeypatch.setattr(tasks.services, "decisions_submit", lambda **_: None)
    run_pipeline(triaged_ticket, django_capture_on_commit_callbacks)
    monkeypatch.undo()
    assert decided_types(triaged_ticket) == ALL_TYPES and not Disposition.objects.exists()

    assert autonomy_tasks.disposition_sweep.apply().get() == "submitted:0"  # still within the grace
    AgentDecision.objects.update(created_at=timezone.now() - timedelta(minutes=10))
    assert autonomy_tasks.disposition_sweep.apply().get() == f"submitted:{len(ALL_TYPES)}"

    assert disposed_once(triaged_ticket) and Disposition.objects.count() == len(ALL_TYPES)
    assert autonomy_tasks.disposition_sweep.apply().get() == "submitted:0"


def test_the_daily_sweep_finds_decisions_older_than_the_frequent_sweeps_window(
    triaged_ticket, trained_models, knowledge, eager_celery, monkeypatch, django_capture_on_commit_callbacks
):
    monkeypatch.setattr(tasks.services, "decisions_submit", lambda **_: None)
    run_pipeline(triaged_ticket, django_capture_on_commit_callbacks)
    monkeypatch.undo()
    AgentDecision.objects.update(created_at=timezone.now() - timedelta(days=3))

    assert autonomy_tasks.disposition_sweep.apply().get() == "submitted:0"
    assert autonomy_tasks.disposition_sweep.apply(kwargs={"everything": True}).get() == "submitted:5"
    assert disposed_once(triaged_ticket)

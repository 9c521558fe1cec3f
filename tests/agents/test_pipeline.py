"""The four-agent pipeline: every step decides once, errors retry then dead-letter, nothing is lost."""

from datetime import timedelta

import pytest
from django.contrib.admin.sites import site
from django.db import OperationalError
from django.test import RequestFactory
from django.utils import timezone

from agents import proposers, tasks
from agents.admin import DeadLetterAdmin
from agents.models import (
    AgentDecision,
    DeadLetter,
    DecisionType,
    KnowledgeArticle,
    PipelineRun,
    Provider,
    Strategy,
)
from tests.factories import TicketFactory, UserFactory
from tickets.models import Category, Ticket

ALL_TYPES = {t.value for t in DecisionType}


def decided_types(ticket) -> set[str]:
    return set(AgentDecision.objects.filter(ticket=ticket).values_list("decision_type", flat=True))


def run_pipeline(ticket, capture):
    """Start the pipeline for a ticket and let every chained step run (Celery eager)."""
    with capture(execute=True):
        tasks.pipeline_start.apply((ticket.pk,))


def test_it_records_all_five_decisions_and_walks_the_ticket_to_the_end(
    triaged_ticket, trained_models, knowledge, eager_celery, django_capture_on_commit_callbacks
):
    run_pipeline(triaged_ticket, django_capture_on_commit_callbacks)

    decisions = {d.decision_type: d for d in AgentDecision.objects.filter(ticket=triaged_ticket)}
    assert set(decisions) == ALL_TYPES
    assert decisions["category"].label == Category.BILLING_INQUIRY
    assert decisions["category"].provider == Provider.LOCAL
    assert decisions["category"].model_version == trained_models["category"]
    assert decisions["strategy"].label in Strategy.values
    assert "INV-2024-76687" in decisions["reply"].value["internal_note"]
    assert all(0 <= d.raw_confidence <= 1 and d.reasoning for d in decisions.values())
    assert all(d.calibrated_confidence is None for d in decisions.values())
    assert all(d.correlation_id == triaged_ticket.correlation_id for d in decisions.values())
    run = PipelineRun.objects.get(ticket=triaged_ticket)
    assert run.status == PipelineRun.Status.DONE
    assert run.context["entities"]["invoices"] == ["INV-2024-76687"]
    triaged_ticket.refresh_from_db()
    assert triaged_ticket.stage == Ticket.Stage.END
    # Agents propose; nothing is applied until the autonomy controller says so.
    assert triaged_ticket.category == ""


def test_a_triage_only_pipeline_ends_after_category_and_priority(
    triaged_ticket, trained_models, knowledge, eager_celery, django_capture_on_commit_callbacks, settings
):
    settings.CSAI_PIPELINE_LAST_STEP = "classify"

    run_pipeline(triaged_ticket, django_capture_on_commit_callbacks)

    assert decided_types(triaged_ticket) == {DecisionType.CATEGORY, DecisionType.PRIORITY}
    assert PipelineRun.objects.get(ticket=triaged_ticket).status == PipelineRun.Status.DONE
    triaged_ticket.refresh_from_db()
    assert triaged_ticket.stage == Ticket.Stage.END


def test_a_step_delivered_twice_writes_one_decision(
    triaged_ticket, trained_models, knowledge, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks():  # the next step is not sent
        run = tasks.services.pipeline_run_start(ticket_id=triaged_ticket.pk)
        first = tasks.classify_step.apply((run.pk,)).get()
        second = tasks.classify_step.apply((run.pk,)).get()

    assert (first, second) == ("decided", "already-decided")
    assert AgentDecision.objects.filter(run=run, decision_type="category").count() == 1
    assert AgentDecision.objects.filter(run=run).count() == 2
    triaged_ticket.refresh_from_db()
    assert triaged_ticket.stage == Ticket.Stage.SELECTION


def test_starting_twice_makes_one_run(triaged_ticket, knowledge, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks():
        tasks.pipeline_start.apply((triaged_ticket.pk,))
        tasks.pipeline_start.apply((triaged_ticket.pk,))
    assert PipelineRun.objects.filter(ticket=triaged_ticket).count() == 1


def test_transient_errors_retry_five_times_then_dead_letter(
    triaged_ticket, trained_models, knowledge, eager_celery, monkeypatch, django_capture_on_commit_callbacks
):
    calls = []

    def database_gone(ctx):
        calls.append(ctx.ticket_id)
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(proposers, "classify_category", database_gone)
    run_pipeline(triaged_ticket, django_capture_on_commit_callbacks)

    assert len(calls) == tasks.MAX_TRIES
    letter = DeadLetter.objects.get()
    assert (letter.ticket, letter.task_name, letter.attempts) == (
        triaged_ticket,
        "agents.tasks.classify_step",
        tasks.MAX_TRIES,
    )
    assert letter.error_type == "OperationalError"
    assert PipelineRun.objects.get().status == PipelineRun.Status.DEAD
    assert not AgentDecision.objects.exists()


def test_a_permanent_error_dead_letters_at_once_and_an_admin_retry_finishes_the_run(
    triaged_ticket, trained_models, knowledge, eager_celery, monkeypatch, django_capture_on_commit_callbacks
):
    monkeypatch.setattr(proposers, "select_strategy", lambda *a, **k: 1 / 0)
    run_pipeline(triaged_ticket, django_capture_on_commit_callbacks)
    letter = DeadLetter.objects.get()
    assert (letter.attempts, letter.error_type) == (1, "ZeroDivisionError")
    assert AgentDecision.objects.filter(ticket=triaged_ticket).count() == 2  # the classifier's two

    monkeypatch.undo()
    admin_user = UserFactory(is_staff=True, is_superuser=True)
    request = RequestFactory().post("/admin/agents/deadletter/")
    request.user = admin_user
    model_admin = DeadLetterAdmin(DeadLetter, site)
    model_admin.message_user = lambda *a, **k: None
    with django_capture_on_commit_callbacks(execute=True):
        model_admin.retry(request, DeadLetter.objects.all())

    letter.refresh_from_db()
    assert letter.retried_by == admin_user
    assert decided_types(triaged_ticket) == ALL_TYPES
    assert PipelineRun.objects.get().status == PipelineRun.Status.DONE
    # A second retry of the same letter sends nothing.
    with django_capture_on_commit_callbacks(execute=True):
        model_admin.retry(request, DeadLetter.objects.all())
    assert AgentDecision.objects.filter(ticket=triaged_ticket).count() == len(ALL_TYPES)


def test_without_a_trained_model_the_category_goes_to_a_person(
    triaged_ticket, knowledge, eager_celery, django_capture_on_commit_callbacks
):
    run_pipeline(triaged_ticket, django_capture_on_commit_callbacks)
    category = AgentDecision.objects.get(ticket=triaged_ticket, decision_type="category")
    assert (category.provider, category.label, category.raw_confidence) == (Provider.NONE, "", 0.0)
    assert category.out_of_scope
    strategy = AgentDecision.objects.get(ticket=triaged_ticket, decision_type="strategy")
    assert strategy.label == Strategy.ESCALATE_TO_HUMAN


@pytest.mark.parametrize(
    ("subject", "body"),
    [
        (
            "Grandma's lemon drizzle",
            "Cream 200g butter with 200g sugar, fold in the zest of two lemons, bake at 180C.",
        ),
        ("zxq vbnm", "qwpoeiru zmxncbv lkjhgf poiuyt"),
    ],
)
def test_a_ticket_unlike_anything_trained_on_gets_no_confident_label(
    subject, body, trained_models, knowledge, eager_celery, django_capture_on_commit_callbacks
):
    ticket = TicketFactory(subject=subject, body=body, stage=Ticket.Stage.CLASSIFIER)
    run_pipeline(ticket, django_capture_on_commit_callbacks)
    category = AgentDecision.objects.get(ticket=ticket, decision_type="category")
    assert category.raw_confidence < 0.5
    if category.out_of_scope:
        assert category.raw_confidence == 0.0
        assert "person should decide" in category.reasoning


def test_gibberish_is_flagged_out_of_scope(
    trained_models, knowledge, eager_celery, django_capture_on_commit_callbacks
):
    ticket = TicketFactory(subject="zxq vbnm", body="qwpoeiru zmxncbv lkjhgf", stage=Ticket.Stage.CLASSIFIER)
    run_pipeline(ticket, django_capture_on_commit_callbacks)
    category = AgentDecision.objects.get(ticket=ticket, decision_type="category")
    assert (category.out_of_scope, category.raw_confidence) == (True, 0.0)


def test_a_reply_with_a_configured_forbidden_phrase_is_blocked_with_the_reason(
    triaged_ticket, trained_models, knowledge, eager_celery, django_capture_on_commit_callbacks, settings
):
    settings.CSAI_GUARDRAIL_FORBIDDEN_PHRASES = ["reference:"]  # every local draft ends with one
    run_pipeline(triaged_ticket, django_capture_on_commit_callbacks)

    reply = AgentDecision.objects.get(ticket=triaged_ticket, decision_type="reply")
    assert (reply.label, reply.value["blocked"], reply.raw_confidence) == ("blocked", True, 0.0)
    assert [(v["part"], v["kind"]) for v in reply.guardrail_violations] == [("reply", "forbidden_phrase")]
    assert 'Blocked by guardrails: reply: forbidden phrase "reference:"' in reply.reasoning


def test_the_sweep_restarts_quiet_runs_and_tickets_whose_start_was_lost(
    triaged_ticket, trained_models, knowledge, eager_celery, django_capture_on_commit_callbacks
):
    long_ago = timezone.now() - timedelta(hours=1)
    Ticket.objects.filter(pk=triaged_ticket.pk).update(updated_at=long_ago)
    lost = TicketFactory(stage=Ticket.Stage.SELECTION)
    with django_capture_on_commit_callbacks():
        run = tasks.services.pipeline_run_start(ticket_id=lost.pk)
    PipelineRun.objects.filter(pk=run.pk).update(updated_at=long_ago)

    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.pipeline_sweep.apply().get() == "nudged:1 started:1 retried:0"

    assert decided_types(triaged_ticket) == ALL_TYPES
    assert AgentDecision.objects.filter(ticket=lost).count() == len(ALL_TYPES)
    assert tasks.pipeline_sweep.apply().get() == "nudged:0 started:0 retried:0"


def test_a_billing_question_gets_the_billing_template_filled_in(
    triaged_ticket, trained_models, knowledge, eager_celery, django_capture_on_commit_callbacks
):
    KnowledgeArticle.objects.filter(kind=KnowledgeArticle.Kind.ARTICLE).update(is_active=False)
    run_pipeline(triaged_ticket, django_capture_on_commit_callbacks)

    decisions = {d.decision_type: d for d in AgentDecision.objects.filter(ticket=triaged_ticket)}
    assert decisions["strategy"].label == Strategy.TEMPLATE_RESPONSE
    reply = decisions["reply"].value["reply"]
    assert reply.startswith("Hi Maria,")
    assert "INV-2024-76687" in reply and f"#{triaged_ticket.pk}" in reply
    assert "{" not in reply  # every placeholder filled
    assert decisions["escalation"].value["escalate"] is False

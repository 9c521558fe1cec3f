"""A decision type is one registry entry: a new one, added here in the test and nowhere else,
goes through the real pipeline, the controller, the console's item page and the reports."""

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone

from agents import decision_types
from agents.decision_types import DecisionKind, Step
from agents.models import AgentDecision, AgentName, PipelineRun
from agents.proposers import Proposal
from autonomy.models import AutomationPolicy, CalibrationVersion, Disposition, ReviewItem
from tests.agents.test_pipeline import run_pipeline
from tickets.models import Ticket

LANGUAGES = ("en", "de", "fr")


def propose_language(ctx, earlier) -> Proposal:
    """A trivial agent: German if the text has a German word, else English; sure of neither."""
    german = any(word in ctx.text.lower().split() for word in ("bitte", "rechnung", "danke"))
    label = "de" if german else "en"
    return Proposal(
        agent=AgentName.CLASSIFIER,
        decision_type="language",
        value={"language": label},
        label=label,
        confidence=0.9,
        reasoning=f"Reads as {label}; category {earlier['category'].label} was decided first.",
    )


def apply_language(*, ticket: Ticket, value: dict, actor) -> None:
    ticket.metadata = {**ticket.metadata, "language": value["language"]}
    ticket.save(update_fields=["metadata", "updated_at"])


@pytest.fixture
def language():
    decision_types.register(
        DecisionKind(
            name="language",
            agent=AgentName.CLASSIFIER,
            step=Step.CLASSIFY,
            after=("category",),
            propose=propose_language,
            fixed_labels=LANGUAGES,
        )
    )
    decision_types.applier_register("language", apply_language)
    yield
    decision_types.unregister("language")


def one_pass(ticket, **answers) -> dict:
    """An answer for every decision waiting on ``ticket``: ``answers`` by type, else the AI's
    own label (sending no reply)."""
    data = {}
    for item in ReviewItem.objects.filter(ticket=ticket, status=ReviewItem.Status.PENDING).select_related(
        "decision"
    ):
        default = "not_sent" if item.decision_type == "reply" else item.decision.label
        data[f"answer-{item.pk}"] = answers.get(item.decision_type, default)
    return data


def calibrated_policy(phase: int) -> None:
    calibration = CalibrationVersion.objects.create(
        decision_type="language", version=1, params={"method": "identity", "n": 500, "xs": [], "ys": []},
        ece=0.02, brier=0.05, samples=500, fitted_at=timezone.now(),
    )  # fmt: skip
    AutomationPolicy.objects.create(
        decision_type="language", phase=phase, calibration=calibration, threshold=0.8
    )


def test_a_new_type_is_proposed_by_the_pipeline_and_shadowed_in_phase_1(
    language, triaged_ticket, trained_models, knowledge, eager_celery, django_capture_on_commit_callbacks
):
    run_pipeline(triaged_ticket, django_capture_on_commit_callbacks)

    decision = AgentDecision.objects.get(ticket=triaged_ticket, decision_type="language")
    assert decision.label == "en" and "category BILLING_INQUIRY was decided first" in decision.reasoning
    assert Disposition.objects.get(decision=decision).kind == Disposition.Kind.SHADOW
    item = ReviewItem.objects.get(decision=decision)
    assert not item.show_suggestion
    assert PipelineRun.objects.get(ticket=triaged_ticket).status == PipelineRun.Status.DONE
    triaged_ticket.refresh_from_db()
    assert "language" not in triaged_ticket.metadata  # a person decides in phase 1


def test_a_new_type_is_applied_in_phase_3_with_a_calibration(
    language, triaged_ticket, trained_models, knowledge, eager_celery, django_capture_on_commit_callbacks
):
    calibrated_policy(phase=3)

    run_pipeline(triaged_ticket, django_capture_on_commit_callbacks)

    decision = AgentDecision.objects.get(ticket=triaged_ticket, decision_type="language")
    disposition = Disposition.objects.get(decision=decision)
    assert disposition.applied and disposition.kind == Disposition.Kind.AUTO_APPLIED_WITH_REVIEW
    triaged_ticket.refresh_from_db()
    assert triaged_ticket.metadata["language"] == "en"


def test_the_console_offers_its_labels_and_applies_an_override_which_the_reports_count(
    language, triaged_ticket, trained_models, knowledge, eager_celery, django_capture_on_commit_callbacks,
    client, supervisor,
):  # fmt: skip
    calibrated_policy(phase=2)
    run_pipeline(triaged_ticket, django_capture_on_commit_callbacks)
    item = ReviewItem.objects.get(ticket=triaged_ticket, decision_type="language")
    client.force_login(supervisor)

    page = client.get(f"/review/tickets/{triaged_ticket.pk}/").content.decode()
    assert '<option value="de">' in page and '<option value="fr">' in page
    assert '<option value="en" selected>' in page  # the suggestion, to accept
    queue = client.get("/review/", {"decision_type": "language"})
    assert queue.status_code == 200 and f"/review/tickets/{triaged_ticket.pk}/" in queue.content.decode()

    client.post(f"/review/tickets/{triaged_ticket.pk}/answer/", one_pass(triaged_ticket, language="fr"))

    item.refresh_from_db()
    assert (item.outcome, item.human_label) == (ReviewItem.Outcome.OVERRIDDEN, "fr")
    triaged_ticket.refresh_from_db()
    assert triaged_ticket.metadata["language"] == "fr"
    report = client.get("/supervisor/calibration/", {"decision_type": "language", "format": "json"}).json()
    assert report["n"] == 1 and report["accuracy"] == 0.0


def test_the_console_refuses_a_label_the_type_does_not_have(
    language, triaged_ticket, trained_models, knowledge, eager_celery, django_capture_on_commit_callbacks,
    client, supervisor,
):  # fmt: skip
    run_pipeline(triaged_ticket, django_capture_on_commit_callbacks)
    item = ReviewItem.objects.get(ticket=triaged_ticket, decision_type="language")
    client.force_login(supervisor)
    client.get(f"/review/tickets/{triaged_ticket.pk}/")

    response = client.post(
        f"/review/tickets/{triaged_ticket.pk}/answer/", one_pass(triaged_ticket, language="klingon")
    )

    assert response.status_code == 400
    item.refresh_from_db()
    assert item.status == ReviewItem.Status.PENDING


def test_a_type_must_come_after_the_types_it_reads():
    with pytest.raises(ImproperlyConfigured, match="reads reply"):
        decision_types.register(
            DecisionKind(
                name="language", agent=AgentName.CLASSIFIER, step=Step.CLASSIFY, after=("reply",),
                propose=propose_language,
            )
        )  # fmt: skip
    assert "language" not in decision_types.names()

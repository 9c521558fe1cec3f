"""With a key set the agents ask Claude; whatever goes wrong, the local model still decides."""

import pytest

from agents import tasks
from agents.models import AgentDecision, Provider
from lab.fake_anthropic import api_error


def tool_use(name: str, tool_input: dict) -> dict:
    return {
        "id": "msg_01",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-6",
        "content": [{"type": "tool_use", "id": "toolu_01", "name": name, "input": tool_input}],
        "stop_reason": "tool_use",
        "stop_sequence": None,
        "usage": {"input_tokens": 500, "output_tokens": 40},
    }


BILLING = tool_use("classify-category", {"category": "BILLING_INQUIRY", "reasoning": "invoice"})


def decide(ticket, capture) -> dict[str, AgentDecision]:
    with capture(execute=True):
        tasks.pipeline_start.apply((ticket.pk,))
    return {d.decision_type: d for d in AgentDecision.objects.filter(ticket=ticket)}


@pytest.fixture
def fast_failures(fake_api, settings):
    settings.CSAI_LLM_MAX_RETRIES = 1
    settings.CSAI_LLM_TIMEOUT_SECONDS = 0.3
    return fake_api


def test_claude_labels_with_the_local_models_confidence_and_its_cost_is_recorded(
    triaged_ticket, trained_models, knowledge, eager_celery, fake_api, django_capture_on_commit_callbacks
):
    fake_api.reply(
        200, tool_use("classify-category", {"category": "BILLING_INQUIRY", "reasoning": "invoice"})
    )
    fake_api.reply(
        200, tool_use("draft-reply", {"reply": "Hi Maria, we are checking invoice INV-2024-76687."})
    )

    decisions = decide(triaged_ticket, django_capture_on_commit_callbacks)

    category = decisions["category"]
    assert (category.provider, category.label) == (Provider.ANTHROPIC, "BILLING_INQUIRY")
    assert (category.input_tokens, category.output_tokens) == (500, 40)
    assert category.cost_usd > 0
    assert category.model_name == "claude-sonnet-4-6"
    assert category.prompt_version
    # Never a number the model typed: the local model's probability for Claude's label.
    assert 0 < category.raw_confidence <= dict(category.evidence["local_top"])["BILLING_INQUIRY"]
    reply = decisions["reply"]
    assert reply.provider == Provider.ANTHROPIC
    assert reply.value["reply"].startswith("Hi Maria")
    sent = fake_api.requests[0]["json"]
    assert sent["tool_choice"]["name"] == "classify-category"
    assert "BILLING_INQUIRY" in sent["tools"][0]["input_schema"]["properties"]["category"]["enum"]


@pytest.mark.parametrize(
    ("script", "kind"),
    [
        ([(429, api_error(429))], "rate_limited"),
        ([(500, api_error(500))], "server_error"),
        (
            [(200, tool_use("classify-category", {"category": "REFUND_EVERYONE", "reasoning": "x"}))],
            "malformed",
        ),
        ([(200, tool_use("classify-category", {"reasoning": "no label"}))], "malformed"),
        (None, "timeout"),
    ],
)
def test_when_claude_fails_the_local_model_decides(
    script, kind, triaged_ticket, trained_models, knowledge, eager_celery, fast_failures,
    django_capture_on_commit_callbacks,
):  # fmt: skip
    if script is None:
        fast_failures.hang()
    for status, body in script or ():
        fast_failures.reply(status, body)

    decisions = decide(triaged_ticket, django_capture_on_commit_callbacks)

    category = decisions["category"]
    assert category.provider == Provider.LOCAL
    assert category.label == "BILLING_INQUIRY"
    assert category.evidence["llm_error"] == kind
    assert f"Claude was unavailable ({kind})" in category.reasoning
    assert decisions["reply"].provider == Provider.RULES
    assert len(decisions) == 5


def test_a_claude_reply_leaking_a_card_number_is_blocked(
    triaged_ticket, trained_models, knowledge, eager_celery, fake_api, django_capture_on_commit_callbacks
):
    fake_api.reply(
        200, tool_use("classify-category", {"category": "BILLING_INQUIRY", "reasoning": "invoice"})
    )
    fake_api.reply(200, tool_use("draft-reply", {"reply": "We refunded the card 4111 1111 1111 1111 today."}))

    reply = decide(triaged_ticket, django_capture_on_commit_callbacks)["reply"]

    assert reply.value["blocked"] is True
    assert [v["kind"] for v in reply.guardrail_violations] == ["card_number"]
    assert "4111 1111 1111 1111" not in reply.reasoning
    assert reply.raw_confidence == 0.0

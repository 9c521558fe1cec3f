"""Review items made the real way: an agent decision submitted to the autonomy controller."""

import pytest
from django.utils import timezone

from agents.models import AgentDecision, PipelineRun
from autonomy.models import AutomationPolicy, CalibrationVersion, ReviewItem
from autonomy.services import controller
from tests.factories import TicketFactory

REPLY = {
    "reply": "Hi Ana, we are looking at your invoice now.",
    "internal_note": "Billing.",
    "blocked": False,
}
VALUES = {
    "category": ("BILLING_INQUIRY", {"category": "BILLING_INQUIRY"}),
    "priority": ("HIGH", {"priority": "HIGH"}),
    "strategy": ("TEMPLATE_RESPONSE", {"strategy": "TEMPLATE_RESPONSE", "kb_items": []}),
    "escalation": (
        "billing",
        {"escalate": True, "path": "billing", "level": 0, "to": "billing specialist", "urgency": "HIGH"},
    ),
    "reply": ("draft", REPLY),
}


def set_phase(decision_type: str, phase: int, threshold: float = 0.8) -> AutomationPolicy:
    version = CalibrationVersion.objects.filter(decision_type=decision_type).count() + 1
    calibration = CalibrationVersion.objects.create(
        decision_type=decision_type, version=version,
        params={"method": "identity", "n": 500, "xs": [], "ys": []}, ece=0.02, brier=0.05, samples=500,
        fitted_at=timezone.now(),
    )  # fmt: skip
    policy, _ = AutomationPolicy.objects.update_or_create(
        decision_type=decision_type,
        defaults={"phase": phase, "calibration": calibration, "threshold": threshold},
    )
    return policy


def make_item(
    *,
    decision_type="category",
    phase=2,
    confidence=0.7,
    ticket=None,
    reasoning="Mentions an invoice.",
    **fields,
) -> ReviewItem:
    """A pending review item for a new decision on ``ticket`` (a new ticket by default)."""
    if not AutomationPolicy.objects.filter(decision_type=decision_type, phase=phase).exists():
        set_phase(decision_type, phase)
    ticket = ticket or TicketFactory()
    number = PipelineRun.objects.filter(ticket=ticket).count() + 1
    run = PipelineRun.objects.create(
        ticket=ticket, number=number, status="done", correlation_id="c", started_at=timezone.now()
    )
    label, value = VALUES[decision_type]
    label, value = fields.pop("label", label), fields.pop("value", value)
    decision = AgentDecision.objects.create(
        ticket=ticket, run=run, agent="classifier", decision_type=decision_type, value=value, label=label,
        raw_confidence=confidence, reasoning=reasoning, provider="local", latency_ms=1, correlation_id="c",
        created_at=timezone.now(), **fields,
    )  # fmt: skip
    controller.decision_submit(decision_id=decision.pk)
    return ReviewItem.objects.select_related("decision", "ticket").get(decision=decision)


@pytest.fixture
def reviewer_client(client, reviewer):
    client.force_login(reviewer)
    return client


@pytest.fixture
def supervisor_client(client, supervisor):
    client.force_login(supervisor)
    return client

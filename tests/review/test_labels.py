"""Pages show choices by their labels ("Technical Issue"), never by their codes
(TECHNICAL_ISSUE); codes stay only where they are values (form values, links, exports)."""

import re
from html.parser import HTMLParser

import pytest
from django.utils import timezone

from autonomy.models import Alert
from autonomy.services import controller, transitions
from tests.factories import CustomerFactory, TicketFactory
from tests.review.conftest import make_item, set_phase

pytestmark = pytest.mark.django_db

# A code as stored: SCREAMING_SNAKE_CASE, or a one-word upper-case choice.
CODE = re.compile(r"\b(?:[A-Z]+(?:_[A-Z]+)+|CRITICAL|HIGH|MEDIUM|LOW|PREMIUM|STANDARD|BASIC)\b")


class _Text(HTMLParser):
    """The text a person reads: element content, not tags, attributes or the page's <title>."""

    def __init__(self):
        super().__init__()
        self.parts, self._skip = [], 0

    def handle_starttag(self, tag, attrs):
        self._skip += tag in ("title", "script", "style")

    def handle_endtag(self, tag):
        self._skip -= tag in ("title", "script", "style")

    def handle_data(self, data):
        if not self._skip:
            self.parts.append(data)


def codes_shown(html: str) -> list[str]:
    parser = _Text()
    parser.feed(html)
    return CODE.findall(" ".join(parser.parts))


@pytest.fixture
def ticket(reviewer):
    customer = CustomerFactory(name="Ana Silva", tier="PREMIUM")
    ticket = TicketFactory(
        customer=customer, subject="Invoice shows the wrong amount", body="Please check my invoice.",
        category="TECHNICAL_ISSUE", priority="HIGH", team="billing",
    )  # fmt: skip
    TicketFactory(customer=customer, subject="Earlier", body="Earlier.")
    item = make_item(ticket=ticket)  # the AI proposes BILLING_INQUIRY
    controller.review_item_answer(item=item, actor=reviewer, label="ACCOUNT_MANAGEMENT")
    make_item(ticket=ticket, decision_type="priority")
    return ticket


def test_the_ticket_page_shows_labels(reviewer_client, ticket):
    html = reviewer_client.get(f"/tickets/{ticket.pk}/").content.decode()

    assert codes_shown(html) == []
    # The override applied the category: the ticket's and the timeline's labels.
    for label in ("Account Management", "High", "Premium", "Billing team", "Billing Inquiry"):
        assert label in html


def test_the_queue_shows_labels_and_keeps_codes_as_values(reviewer_client, ticket):
    html = reviewer_client.get("/review/").content.decode()

    assert codes_shown(html) == []
    assert ">High<" in html and "Premium" in html and '<span class="tag">Priority</span>' in html
    assert 'value="TECHNICAL_ISSUE"' in html and 'href="?decision_type=priority"' in html


def test_the_supervisor_pages_show_labels(supervisor_client, supervisor, ticket):
    transitions.policy_promote(policy=set_phase("category", 2), actor=supervisor, reason="ready")
    Alert.objects.create(
        decision_type="category", type=Alert.Type.ACCURACY_DEGRADATION, severity="high",
        metric="autonomous_accuracy", value=0.81, threshold=0.85, samples=120,
        recommendation="Demote category to phase 2.", created_at=timezone.now(),
    )  # fmt: skip

    alerts = supervisor_client.get("/supervisor/alerts/").content.decode()
    autonomy = supervisor_client.get("/supervisor/autonomy/").content.decode()
    calibration = supervisor_client.get("/supervisor/calibration/?decision_type=category").content.decode()

    assert codes_shown(alerts) == codes_shown(autonomy) == codes_shown(calibration) == []
    assert "Accuracy Degradation" in alerts and ">High<" in alerts
    assert ">Category<" in autonomy and ">Promote<" in autonomy
    assert "Category: 1 reviewed decisions" in calibration and "Account Management" in calibration

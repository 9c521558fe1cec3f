"""The browser tab names the ticket shown, after an htmx swap too: htmx sets document.title
from a <title> at the top level of the swapped fragment."""

import re

import pytest

from tests.factories import TicketFactory
from tests.review.conftest import make_item

pytestmark = pytest.mark.django_db


def leading_title(html: str) -> str | None:
    match = re.match(r"\s*<title>(.*?)</title>", html, flags=re.S)
    return match and match.group(1)


@pytest.fixture
def two_items():
    first = make_item(ticket=TicketFactory(subject="Charged twice for March"))
    second = make_item(ticket=TicketFactory(subject="Cannot log in since the update"))
    return first, second


def test_the_review_page_is_titled_after_its_ticket(reviewer_client, two_items):
    first, _ = two_items

    html = reviewer_client.get(f"/review/tickets/{first.ticket_id}/").content.decode()

    assert f"<title>#{first.ticket_id} Charged twice for March · Review · CSAI</title>" in html
    assert html.count("<title>") == 1


def test_next_swaps_in_the_next_tickets_title(reviewer_client, two_items):
    first, second = two_items
    reviewer_client.get(f"/review/tickets/{first.ticket_id}/")

    response = reviewer_client.get(
        f"/review/tickets/{first.ticket_id}/next/", HTTP_HX_REQUEST="true", follow=True
    )

    html = response.content.decode()
    assert "<html" not in html
    assert leading_title(html) == f"#{second.ticket_id} Cannot log in since the update · Review · CSAI"


def test_answering_swaps_in_the_next_tickets_title(reviewer_client, two_items):
    first, second = two_items
    reviewer_client.get(f"/review/tickets/{first.ticket_id}/")

    response = reviewer_client.post(
        f"/review/tickets/{first.ticket_id}/answer/",
        {f"answer-{first.pk}": "BILLING_INQUIRY"},
        HTTP_HX_REQUEST="true",
    )

    assert leading_title(response.content.decode()) == (
        f"#{second.ticket_id} Cannot log in since the update · Review · CSAI"
    )


def test_the_ticket_page_and_its_fragment_are_titled_after_the_ticket(supervisor_client):
    ticket = TicketFactory(subject="Refund for a broken chair")
    title = f"#{ticket.pk} Refund for a broken chair · Ticket · CSAI"

    page = supervisor_client.get(f"/tickets/{ticket.pk}/").content.decode()
    fragment = supervisor_client.get(f"/tickets/{ticket.pk}/", HTTP_HX_REQUEST="true").content.decode()

    assert f"<title>{title}</title>" in page and page.count("<title>") == 1
    assert leading_title(fragment) == title

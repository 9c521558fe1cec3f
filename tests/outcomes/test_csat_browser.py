"""The satisfaction survey on a phone in a real browser (Playwright driving Debian's
Chromium against a live server): answered once, then refused. Its screenshot is the
README's (docs/screenshots/csat-phone.png)."""

import re
from pathlib import Path

from django.db import transaction

from outcomes.links import SURVEY
from tests.factories import CustomerFactory, TicketFactory
from tests.review.test_browser import browser, pytestmark  # noqa: F401  (fixture and markers)
from tickets.services import ticket_resolve

DOCS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
PHONE = {"width": 375, "height": 740}


def test_a_customer_rates_us_once_on_a_phone(transactional_db, browser, live_server):  # noqa: F811
    ticket = TicketFactory(
        subject="Password reset mail never arrives",
        customer=CustomerFactory(name="Dana Whitfield", email="dana@acme.example"),
    )
    with transaction.atomic():
        ticket_resolve(ticket=ticket, by_ai=True)
    survey = ticket.surveys.get()
    path = f"/csat/{SURVEY.token(survey.pk)}/"
    context = browser.new_context(
        base_url=live_server.url, viewport=PHONE, device_scale_factor=2, is_mobile=True
    )
    page, second = context.new_page(), context.new_page()
    try:
        page.goto(path)
        second.goto(path)  # the mail opened twice: a second tab with the same form
        assert page.get_by_role("group", name="How satisfied are you with our help?").is_visible()
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]  # no sideways scroll
        page.get_by_label(re.compile(r"^4\W+Good$")).check()
        page.get_by_label("Anything you want to tell us?").fill("Quick answer, worked on the first try.")
        DOCS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(DOCS / "csat-phone.png"))

        page.get_by_role("button", name="Send my answer").click()
        assert page.get_by_role("heading", name="Thank you!").is_visible()

        second.get_by_label(re.compile(r"^1\W+Very poor$")).check()
        with second.expect_response(lambda r: r.request.method == "POST") as answered:
            second.get_by_role("button", name="Send my answer").click()
        assert answered.value.status == 409
        assert second.get_by_role("heading", name="You have answered already").is_visible()
    finally:
        context.close()

    survey.refresh_from_db()
    assert (survey.score, survey.comment) == (4, "Quick answer, worked on the first try.")

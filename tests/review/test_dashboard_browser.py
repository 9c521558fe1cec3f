"""The dashboard's outcomes section in a real browser, on a month of demo-like history (the
console bench's generator, small): the headline and its charts render, and the screenshot
the README shows is taken from it."""

import pytest
from django.utils import timezone

from bench.outcomes_seed import seed_outcomes
from tests.factories import CustomerFactory, UserFactory
from tests.review import test_browser
from tests.review.test_browser import browser, open_page  # noqa: F401 - fixtures
from tickets import roles

pytestmark = test_browser.pytestmark


@pytest.fixture
def month_of_outcomes(transactional_db):
    sam = UserFactory(username="sam", first_name="Sam", groups=[roles.SUPERVISOR])
    CustomerFactory.create_batch(60)
    seed_outcomes(source="demo", tickets=3000, days=30, reviewer_id=sam.pk, now=timezone.now(), quiet=True)
    return sam


def test_the_outcomes_section_shows_the_headline_and_six_charts(month_of_outcomes, open_page):  # noqa: F811
    page = open_page("sam")
    page.goto("/supervisor/dashboard/?days=30")
    section = page.locator("section.outcomes")
    section.get_by_text("Is more automation costing satisfaction?").wait_for()

    assert section.locator("svg.chart").count() == 6
    assert section.locator("svg.chart polyline.line.s2").count() >= 3  # the person's lines
    assert "less human time per ticket" in section.inner_text()
    test_browser.SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    section.screenshot(path=str(test_browser.SCREENSHOTS / "supervisor-dashboard-outcomes.png"))

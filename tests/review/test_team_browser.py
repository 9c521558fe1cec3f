"""The team page in a real browser (the set-up of tests/review/test_browser.py): a supervisor
adds a reviewer, who then logs in with the password shown once."""

import re

from django.utils import timezone
from rest_framework.authtoken.models import Token

from tests.factories import UserFactory
from tests.review import test_browser
from tickets import roles

# The browser set-up of test_browser.py: its marks (and skip without Chromium), its fixtures.
pytestmark = test_browser.pytestmark
browser, open_page, shot = test_browser.browser, test_browser.open_page, test_browser.shot


def _team():
    now = timezone.now()
    UserFactory(username="sam", first_name="Sam", last_name="Okafor", groups=[roles.SUPERVISOR])
    rita = UserFactory(
        username="rita", first_name="Rita", last_name="Moreno", groups=[roles.REVIEWER],
        last_login=now - timezone.timedelta(hours=2),
    )  # fmt: skip
    Token.objects.create(user=rita)
    UserFactory(
        username="omar", first_name="Omar", last_name="Haddad", groups=[roles.REVIEWER],
        last_login=now - timezone.timedelta(days=1, hours=3),
    )  # fmt: skip
    UserFactory(
        username="lena", first_name="Lena", last_name="Berg", groups=[roles.REVIEWER], is_active=False
    )
    UserFactory(username="it-admin", is_staff=True, groups=[roles.ADMIN])


def test_a_supervisor_adds_a_reviewer_who_then_logs_in(transactional_db, open_page, browser, live_server):
    from django.contrib.auth import get_user_model

    _team()
    page = open_page("sam")
    page.get_by_role("link", name="Team").click()
    page.wait_for_url("**/supervisor/team/")
    page.get_by_role("heading", name="Add a person").wait_for()

    page.evaluate("window.__sameDocument = true")
    page.get_by_label("Username").fill("nadia")
    page.get_by_label("First name").fill("Nadia")
    page.get_by_label("Last name").fill("Haddad")
    page.get_by_label("Email").fill("nadia@example.com")
    page.get_by_label("Role", exact=True).select_option("reviewer")
    page.get_by_role("button", name="Add person").click()
    page.get_by_text("Added nadia as reviewer.").wait_for()
    assert page.evaluate("window.__sameDocument") is True  # htmx swapped it in
    password = page.locator("#secret-value").inner_text()
    assert re.fullmatch(r"(\w{4}-){3}\w{4}", password)
    assert get_user_model().objects.get(username="nadia").groups.get().name == roles.REVIEWER
    shot(page, "team")

    context = browser.new_context(base_url=live_server.url, viewport={"width": 1360, "height": 900})
    try:
        nadia = context.new_page()
        nadia.goto("/accounts/login/")
        nadia.get_by_label("Username").fill("nadia")
        nadia.get_by_label("Password").fill(password)
        nadia.get_by_role("button", name="Log in").click()
        nadia.wait_for_url(re.compile(r"/review/$"))
        assert nadia.get_by_role("link", name="Team").count() == 0
        assert nadia.goto("/supervisor/team/").status == 403
    finally:
        context.close()

    # Once handed over, the password is gone from the page.
    page.reload()
    page.get_by_role("heading", name="Add a person").wait_for()
    assert password not in page.content()

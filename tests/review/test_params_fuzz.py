"""Property: whatever query string a logged-in reviewer or supervisor sends to a console page,
the answer is never a 5xx (a bad value is a 400 or is ignored), with htmx or without."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.factories import TicketFactory
from tests.review.conftest import make_item

pytestmark = pytest.mark.django_db

# Every console page that reads query parameters, with the parameters it reads.
PAGES = {
    "/review/": ["decision_type", "category", "priority", "age", "page"],
    "/review/counts/": [],
    "/tickets/": ["q"],
    "/supervisor/autonomy/": ["format"],
    "/supervisor/alerts/": ["format"],
    "/supervisor/calibration/": ["decision_type", "target", "format"],
    "/supervisor/dashboard/": ["days", "format"],
}
PLAUSIBLE = [
    "", "category", "reply", "TECHNICAL_ISSUE", "HIGH", "1h", "4h", "1", "0", "-1", "365", "366",
    "0.9", "nan", "inf", "1e308", "csv", "json", "#1", "%", "_", "\\", "'", "<b>", "\x00", "a\x00b",
]  # fmt: skip
# Any text Django can receive in a URL (no lone surrogates: they cannot be percent-encoded).
values = st.sampled_from(PLAUSIBLE) | st.text(max_size=40) | st.integers().map(str)


@st.composite
def console_requests(draw) -> tuple[str, dict[str, str | list[str]], bool]:
    path = draw(st.sampled_from(sorted(PAGES)))
    names = st.sampled_from(PAGES[path]) | st.text(max_size=10) if PAGES[path] else st.text(max_size=10)
    params = draw(st.dictionaries(names, values | st.lists(values, max_size=3), max_size=4))
    return path, params, draw(st.booleans())


@pytest.fixture
def tickets(db):
    """Something for every filter to find: items of two types, tickets with text."""
    make_item(decision_type="category")
    make_item(decision_type="priority", ticket=TicketFactory(subject="Refund 50% please"))


@pytest.mark.parametrize("role", ["reviewer", "supervisor"])
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sent=console_requests())
def test_no_query_string_makes_a_console_page_fail(client, reviewer, supervisor, tickets, role, sent):
    path, params, htmx = sent
    client.force_login(reviewer if role == "reviewer" else supervisor)

    response = client.get(path, params, **({"HTTP_HX_REQUEST": "true"} if htmx else {}))

    assert response.status_code < 500, (path, params, response.content[:500])

"""Error answers: the site's 403, 404 and 500 pages in its layout, JSON under /api/, and a
4xx logged as one line (no traceback: it is not a bug)."""

import logging

import pytest
from django.test import Client, RequestFactory

from csai import errors
from tests.conftest import token_client
from tests.factories import TicketFactory

pytestmark = pytest.mark.django_db


def test_the_404_page_is_in_the_site_layout_with_ways_on(client, reviewer):
    client.force_login(reviewer)

    response = client.get("/no/such/page/")

    assert response.status_code == 404
    html = response.content.decode()
    assert 'class="brand"' in html and "<title>Not found · CSAI</title>" in html
    assert "/no/such/page/" in html and 'href="/review/"' in html and "Log out" in html


def test_a_404_to_htmx_is_a_flash_message(client, reviewer):
    client.force_login(reviewer)

    response = client.get("/review/items/999999/", HTTP_HX_REQUEST="true")

    assert response.status_code == 404
    assert response["HX-Retarget"] == "#flash" and "<html" not in response.content.decode()


def test_the_403_page_is_in_the_site_layout(client, outsider):
    client.force_login(outsider)

    response = client.get("/review/")

    assert response.status_code == 403
    assert 'class="brand"' in response.content.decode() and "Not allowed" in response.content.decode()


def test_the_500_page_needs_no_database_and_no_user(django_assert_num_queries):
    request = RequestFactory().get("/review/")

    with django_assert_num_queries(0):
        response = errors.server_error(request)

    html = response.content.decode()
    assert response.status_code == 500
    assert 'class="brand"' in html and "Something went wrong" in html
    assert "Log in" not in html and "Log out" not in html


def test_a_failing_console_page_answers_the_500_page(client, reviewer, monkeypatch):
    monkeypatch.setattr("review.selectors.ticket_search", lambda **_: 1 / 0)
    client = Client(raise_request_exception=False)
    client.force_login(reviewer)

    response = client.get("/tickets/")

    assert response.status_code == 500
    assert "Something went wrong" in response.content.decode()


@pytest.mark.parametrize(
    ("user", "method", "path", "status"),
    [
        ("reviewer", "get", "/api/v1/no-such-endpoint/", 404),
        ("reviewer", "get", "/api/v1/tickets/999999/", 404),
        ("outsider", "get", "/api/v1/tickets/", 403),
        ("reviewer", "post", "/api/v1/policies/category/promote/", 403),
        ("reviewer", "delete", "/api/v1/tickets/", 405),
        ("reviewer", "get", "/api/v1/tickets/?status=nope", 400),
    ],
)
def test_api_errors_are_json(request, user, method, path, status):
    response = getattr(token_client(request.getfixturevalue(user)), method)(path)

    assert response.status_code == status
    assert response["Content-Type"] == "application/json"
    assert response.json()


def test_a_failing_api_call_answers_json_500(reviewer, monkeypatch):
    monkeypatch.setattr("tickets.selectors.ticket_list", lambda **_: 1 / 0)
    client = token_client(reviewer)
    client.raise_request_exception = False

    response = client.get("/api/v1/tickets/")

    assert response.status_code == 500
    assert response.json() == {"detail": "Server error."}


def test_an_expected_403_is_logged_as_one_line_without_a_traceback(client, outsider, caplog):
    ticket = TicketFactory()
    client.force_login(outsider)

    with caplog.at_level(logging.WARNING, logger="django.request"):
        response = client.get(f"/tickets/{ticket.pk}/")

    assert response.status_code == 403
    (record,) = [r for r in caplog.records if r.name == "django.request"]
    assert record.levelno == logging.WARNING and record.status_code == 403
    assert record.exc_info is None and record.exc_text is None
    assert "Traceback" not in caplog.text


def test_a_500_is_still_logged_with_its_traceback(reviewer, monkeypatch, caplog):
    monkeypatch.setattr("review.selectors.ticket_search", lambda **_: 1 / 0)
    client = Client(raise_request_exception=False)
    client.force_login(reviewer)

    with caplog.at_level(logging.WARNING, logger="django.request"):
        client.get("/tickets/")

    (record,) = [r for r in caplog.records if r.name == "django.request"]
    assert record.levelno == logging.ERROR and record.exc_info is not None

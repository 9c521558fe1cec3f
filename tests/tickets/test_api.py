import pytest
from rest_framework.test import APIClient

from tests.conftest import token_client
from tests.factories import MessageFactory, TicketFactory
from tickets.models import Message

pytestmark = pytest.mark.django_db

LIST_URL = "/api/v1/tickets/"


def detail_url(ticket_id: int) -> str:
    return f"/api/v1/tickets/{ticket_id}/"


def test_it_lists_tickets_newest_first_with_customer_and_messages(reviewer):
    older = TicketFactory(subject="older")
    newer = TicketFactory(
        subject="newer", created_at=older.created_at.replace(year=older.created_at.year + 1)
    )
    MessageFactory(ticket=newer, content="first")
    MessageFactory(ticket=newer, kind=Message.Kind.INTERNAL, sender_kind="cs_agent", content="note")

    response = token_client(reviewer).get(LIST_URL)

    assert response.status_code == 200
    results = response.json()["results"]
    assert [t["subject"] for t in results] == ["newer", "older"]
    assert results[0]["customer"]["external_id"] == newer.customer.external_id
    assert [(m["kind"], m["content"]) for m in results[0]["messages"]] == [
        ("external", "first"),
        ("internal", "note"),
    ]


@pytest.mark.parametrize(
    ("field", "value", "other"),
    [
        ("status", "escalated", "new"),
        ("category", "BILLING_INQUIRY", "BUG_REPORT"),
        ("priority", "HIGH", "LOW"),
    ],
)
def test_it_filters_by_status_category_and_priority(reviewer, field, value, other):
    wanted = TicketFactory(**{field: value})
    TicketFactory(**{field: other})

    response = token_client(reviewer).get(LIST_URL, {field: value})

    assert [t["id"] for t in response.json()["results"]] == [wanted.pk]


def test_an_unknown_filter_value_gets_400_naming_the_field(reviewer):
    response = token_client(reviewer).get(LIST_URL, {"priority": "URGENT!!"})

    assert response.status_code == 400
    assert "priority" in response.json()


def test_pages_follow_the_cursor_without_repeats(reviewer):
    TicketFactory.create_batch(7)
    client = token_client(reviewer)

    seen, url, pages = [], LIST_URL + "?page_size=3", 0
    while url:
        page = client.get(url).json()
        seen += [t["id"] for t in page["results"]]
        url, pages = page["next"], pages + 1

    assert pages == 3
    assert len(seen) == len(set(seen)) == 7


def test_the_list_runs_a_fixed_number_of_queries(reviewer, django_assert_max_num_queries):
    for ticket in TicketFactory.create_batch(20):
        MessageFactory.create_batch(2, ticket=ticket)
    client = token_client(reviewer)

    # token user + permissions, tickets page, messages prefetch: not one query per ticket
    with django_assert_max_num_queries(6):
        response = client.get(LIST_URL)
    assert len(response.json()["results"]) == 20


def test_detail_shows_one_ticket_with_its_conversation(reviewer):
    ticket = TicketFactory()
    MessageFactory(ticket=ticket, content="Where is my order ORD-2024-000001?")

    response = token_client(reviewer).get(detail_url(ticket.pk))

    assert response.status_code == 200
    assert response.json()["id"] == ticket.pk
    assert response.json()["messages"][0]["content"] == "Where is my order ORD-2024-000001?"


def test_a_missing_ticket_is_404(reviewer):
    assert token_client(reviewer).get(detail_url(999999)).status_code == 404


@pytest.mark.parametrize("url", [LIST_URL, detail_url(1)])
def test_without_credentials_the_api_answers_401(url):
    assert APIClient().get(url).status_code == 401


def test_a_wrong_token_is_401():
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")
    assert client.get(LIST_URL).status_code == 401


def test_a_user_without_a_role_is_403(outsider):
    ticket = TicketFactory()
    client = token_client(outsider)

    assert client.get(LIST_URL).status_code == 403
    assert client.get(detail_url(ticket.pk)).status_code == 403


def test_the_api_is_read_only(supervisor):
    ticket = TicketFactory()
    client = token_client(supervisor)

    assert client.post(LIST_URL, {}).status_code == 405
    assert client.delete(detail_url(ticket.pk)).status_code == 405


def test_the_openapi_schema_and_docs_are_served(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    docs = client.get("/api/docs/")

    assert schema.status_code == 200
    paths = schema.json()["paths"]
    assert {"/api/v1/webhooks/tickets", "/api/v1/tickets/", "/api/v1/tickets/{ticket_id}/"} <= set(paths)
    assert "201" in paths["/api/v1/webhooks/tickets"]["post"]["responses"]
    assert docs.status_code == 200
    assert b"swagger" in docs.content.lower()
    assert b"cdn" not in docs.content.lower()  # served from our own static files


def test_the_openapi_schema_is_valid_and_generates_without_warnings(tmp_path):
    from django.core.management import call_command

    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yml"))

    assert "/api/v1/webhooks/tickets" in (tmp_path / "schema.yml").read_text()

"""Outages answer like a service: 503 with Retry-After, never the 500 page, and a 201 from
the webhook only once its ticket is committed.

The outages are real: the connection is pointed at a closed port (PostgreSQL or Redis
refusing connections, as while they restart), or the database backend is terminated just
before the intake transaction commits.
"""

import json
import socket
from contextlib import contextmanager

import pytest
from django.db import connection, connections

from csai.errors import RETRY_AFTER_SECONDS
from tests.conftest import WEBHOOK_URL, signed_post, ticket_payload, token_client
from tickets.models import Ticket

pytestmark = pytest.mark.django_db(transaction=True)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def database_down():
    """Every new database connection is refused until the block ends."""
    saved = dict(connection.settings_dict)
    connection.close()
    connection.settings_dict.update(HOST="127.0.0.1", PORT=str(closed_port()))
    try:
        yield
    finally:
        connection.close()
        connection.settings_dict.update(saved)


def assert_unavailable(response, *, json_body: bool = True):
    assert response.status_code == 503
    assert response["Retry-After"] == str(RETRY_AFTER_SECONDS)
    if json_body:
        assert response["Content-Type"] == "application/json"
        assert "unavailable" in response.json()["detail"]


def test_the_webhook_answers_503_with_retry_after_while_the_database_is_down(client):
    with database_down():
        response = signed_post(client, ticket_payload())

    assert_unavailable(response)
    assert not Ticket.objects.exists()
    # The sender retries once the database is back, and the ticket is accepted.
    assert signed_post(client, ticket_payload()).status_code == 201


def test_the_api_answers_503_json_while_the_database_is_down(reviewer):
    api = token_client(reviewer)

    with database_down():
        response = api.get("/api/v1/tickets/")

    assert_unavailable(response)


def test_a_console_page_answers_503_while_the_database_is_down(client, reviewer):
    client.force_login(reviewer)

    with database_down():
        response = client.get("/review/")

    assert_unavailable(response, json_body=False)
    assert b"Briefly unavailable" in response.content


def test_the_login_answers_503_while_redis_is_down(client, reviewer, settings):
    # Failed logins are counted in the Redis cache.
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{closed_port()}/0",
        }
    }

    response = client.post("/accounts/login/", {"username": "reviewer", "password": "wrong"})

    assert_unavailable(response, json_body=False)


def test_a_delivery_whose_commit_fails_is_refused_with_503_and_stores_nothing(client):
    """Accepted means stored: the backend dies after the last INSERT, so COMMIT fails."""

    def kill_after_the_message_insert(execute, sql, params, many, context):
        result = execute(sql, params, many, context)
        if sql.startswith('INSERT INTO "tickets_message"'):
            pid = context["connection"].connection.info.backend_pid
            killer = connections.create_connection("default")
            try:
                with killer.cursor() as cursor:
                    cursor.execute("SELECT pg_terminate_backend(%s, 5000)", [pid])
            finally:
                killer.close()
        return result

    with connection.execute_wrapper(kill_after_the_message_insert):
        response = signed_post(client, ticket_payload())
    connection.close()

    assert_unavailable(response)
    assert not Ticket.objects.exists()


def test_an_unknown_path_under_api_answers_json_404(client):
    for path in ("/api/v2/nothing", "/api/v1/tickets/not-a-number/", f"{WEBHOOK_URL}/extra"):
        response = client.get(path)

        assert response.status_code == 404, path
        assert response["Content-Type"] == "application/json", path
        assert json.loads(response.content) == {"detail": "Not found."}


def test_an_unknown_console_path_still_gets_the_html_404_page(client):
    response = client.get("/no-such-page/")

    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")

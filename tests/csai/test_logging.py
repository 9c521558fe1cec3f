import json
import logging

import pytest

from csai.logging import HEADER, CorrelationIdFilter, set_correlation_id
from tests.conftest import signed_post, ticket_payload
from tickets.models import Ticket


@pytest.mark.django_db
def test_every_response_carries_a_correlation_id(client):
    response = client.get("/health/")

    assert len(response[HEADER]) == 32


@pytest.mark.django_db
def test_a_clean_incoming_correlation_id_is_kept_on_the_ticket(client):
    response = signed_post(client, ticket_payload(), HTTP_X_CORRELATION_ID="crm-req-7781")

    assert response[HEADER] == "crm-req-7781"
    assert Ticket.objects.get().correlation_id == "crm-req-7781"


@pytest.mark.django_db
def test_an_incoming_correlation_id_with_odd_characters_is_replaced(client):
    response = client.get("/health/", HTTP_X_CORRELATION_ID="<script>alert(1)</script>")

    assert response[HEADER] != "<script>alert(1)</script>"
    assert len(response[HEADER]) == 32


def test_log_lines_are_json_with_the_correlation_id(settings):
    formatter = logging.getLogger().handlers[0].formatter
    record = logging.LogRecord("tickets", logging.INFO, __file__, 1, "ticket created", None, None)
    set_correlation_id("abc123")
    try:
        CorrelationIdFilter().filter(record)
    finally:
        set_correlation_id(None)

    line = json.loads(formatter.format(record))

    assert line["message"] == "ticket created"
    assert line["correlation_id"] == "abc123"
    assert line["level"] == "INFO"


@pytest.mark.django_db
def test_the_webhook_secret_never_appears_in_the_logs(client, caplog, settings):
    with caplog.at_level(logging.DEBUG):
        signed_post(client, ticket_payload())
        signed_post(client, ticket_payload(external_id="other"), secret="wrong-secret")

    assert settings.CSAI_WEBHOOK_SECRET not in caplog.text
    assert "wrong-secret" not in caplog.text

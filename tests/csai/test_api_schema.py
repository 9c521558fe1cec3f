"""Guard: the OpenAPI schema is what the server does.

Schemathesis generates requests for every operation in /api/schema/ and sends them to the
WSGI application in this process, once with a reviewer's token and once with a
supervisor's. No answer may be a 5xx, and every answer's status, media type, headers and
body must be the ones the schema documents. Bounded (a few examples per operation) so it
runs in about a minute; the issue-15 probe ran ~27,000 requests the same way.
"""

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from autonomy.models import Alert
from csai.wsgi import application
from tests.conftest import token_client
from tests.factories import MessageFactory, TicketFactory

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@pytest.fixture
def api_schema(db, reviewer, supervisor):
    # The WSGI handler closes the connection after each request, which would end the
    # test's transaction; Django's test client does the same as here.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        assigned = TicketFactory(assignee=reviewer)
        MessageFactory(ticket=assigned)
        TicketFactory(assignee=None)
        Alert.objects.create(
            decision_type="priority",
            type=Alert.Type.ACCURACY_DEGRADATION,
            severity=Alert.Severity.HIGH,
            metric="accuracy",
            value=0.7,
            threshold=0.9,
            recommendation="Demote to phase 1.",
            created_at=timezone.now(),
        )
        yield schemathesis.openapi.from_wsgi("/api/schema/?format=json", application)
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


def _fuzz(schema, *, token: str, subtests) -> None:
    """Every operation: a few valid and a few invalid requests, each answer checked."""

    for result in schema.get_all_operations():
        operation = result.ok()
        strategy = operation.as_strategy(GenerationMode.POSITIVE) | operation.as_strategy(
            GenerationMode.NEGATIVE
        )

        @given(case=strategy)
        @settings(
            max_examples=10,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def run(case):
            case.call_and_validate(headers={"Authorization": token}, checks=CHECKS)

        with subtests.test(msg=operation.label):
            run()


def _token(user) -> str:
    return token_client(user)._credentials["HTTP_AUTHORIZATION"]


def test_every_operation_answers_a_reviewer_as_its_schema_says_and_never_5xx(api_schema, reviewer, subtests):
    _fuzz(api_schema, token=_token(reviewer), subtests=subtests)


def test_every_operation_answers_a_supervisor_as_its_schema_says_and_never_5xx(
    api_schema, supervisor, subtests
):
    _fuzz(api_schema, token=_token(supervisor), subtests=subtests)


# --- what the fuzzer cannot see: what the schema offers ----------------------------------


@pytest.fixture
def openapi(client) -> dict:
    return client.get("/api/schema/?format=json").json()


def operations(openapi: dict):
    for path, methods in openapi["paths"].items():
        for method, operation in methods.items():
            yield f"{method.upper()} {path}", operation


def test_the_webhook_offers_only_the_json_body_it_accepts(openapi):
    body = openapi["paths"]["/api/v1/webhooks/tickets"]["post"]["requestBody"]

    assert list(body["content"]) == ["application/json"]


def test_every_operation_documents_503_with_retry_after_and_logins_401_and_403(openapi):
    for label, operation in operations(openapi):
        responses = operation["responses"]
        assert responses["503"]["headers"]["Retry-After"]["required"], label
        if {} not in operation.get("security", [{}]):
            assert {"401", "403"} <= set(responses), label


def test_a_field_the_server_may_send_as_null_is_nullable(openapi):
    schemas = openapi["components"]["schemas"]

    assert schemas["Ticket"]["properties"]["assignee"]["nullable"] is True
    assert schemas["Alert"]["properties"]["acknowledged_by"]["nullable"] is True

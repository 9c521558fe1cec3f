import json

import pytest
from django.core.cache import cache
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from tests.factories import UserFactory
from tickets import roles, webhooks

WEBHOOK_SECRET = "test-webhook-secret"
WEBHOOK_URL = "/api/v1/webhooks/tickets"


@pytest.fixture(autouse=True)
def _webhook_secret(settings):
    settings.CSAI_WEBHOOK_SECRET = WEBHOOK_SECRET


@pytest.fixture(autouse=True)
def _clean_cache():
    """Throttle counters live in the (test-only) Redis cache; every test starts fresh."""
    cache.clear()
    yield


@pytest.fixture
def reviewer(db):
    return UserFactory(username="reviewer", groups=[roles.REVIEWER])


@pytest.fixture
def supervisor(db):
    return UserFactory(username="supervisor", groups=[roles.SUPERVISOR])


@pytest.fixture
def outsider(db):
    """Logged in, but in no group: may see nothing."""
    return UserFactory(username="outsider")


def token_client(user) -> APIClient:
    client = APIClient()
    token, _ = Token.objects.get_or_create(user=user)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


def ticket_payload(**overrides) -> dict:
    payload = {
        "source": "zendesk",
        "external_id": "ZD-1001",
        "subject": "Card payment declined at checkout",
        "body": "Hi, my card keeps getting declined with ERR_PAYMENT_402 on order ORD-2024-004512.",
        "channel": "email",
        "customer": {
            "external_id": "ACME-17",
            "name": "Dana Whitfield",
            "email": "dana@acme.example",
            "company": "Acme Corp",
            "tier": "PREMIUM",
        },
        "metadata": {"locale": "en-GB"},
    }
    payload.update(overrides)
    return payload


def signed_post(client, body: bytes | dict, *, secret: str = WEBHOOK_SECRET, timestamp=None, **headers):
    raw = json.dumps(body).encode() if isinstance(body, dict) else body
    headers.setdefault("HTTP_X_CSAI_SIGNATURE", webhooks.sign(secret=secret, body=raw, timestamp=timestamp))
    headers.setdefault("content_type", "application/json")
    return client.post(WEBHOOK_URL, raw, **headers)

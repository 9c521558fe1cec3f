"""Property: whatever a correctly signed sender posts, the answer is 201, 200 or 400 —
never a 500 — and a 400 stores nothing."""

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import signed_post, ticket_payload
from tickets.models import Customer, Message, Ticket

pytestmark = pytest.mark.django_db

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4),
    max_leaves=12,
)
valid = ticket_payload()
field_values = {
    "source": st.sampled_from([valid["source"], "", "a" * 65, "x y"]) | json_values,
    "external_id": st.text(max_size=140) | json_values,
    "subject": st.text(max_size=320) | json_values,
    "body": st.text(max_size=500) | json_values,
    "channel": st.sampled_from(["email", "web_chat", "fax"]) | json_values,
    "customer": st.fixed_dictionaries(
        {"external_id": st.text(max_size=140), "name": st.text(max_size=210)},
        optional={
            "email": st.emails() | st.text(max_size=30),
            "company": st.text(max_size=210),
            "tier": st.sampled_from(["PREMIUM", "BASIC", "GOLD"]),
        },
    )
    | json_values,
    "metadata": st.dictionaries(st.text(max_size=5), json_values | st.floats(), max_size=3) | json_values,
}


@st.composite
def payloads(draw) -> dict | object:
    """A valid ticket with up to three fields replaced, or any JSON value at all."""
    if draw(st.booleans()) and draw(st.booleans()):
        return draw(json_values)
    payload = ticket_payload(external_id=draw(st.uuids()).hex)
    for field in draw(st.sets(st.sampled_from(sorted(field_values)), min_size=1, max_size=3)):
        payload[field] = draw(field_values[field])
    return payload


def counts() -> tuple[int, int, int]:
    return Ticket.objects.count(), Customer.objects.count(), Message.objects.count()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(payload=payloads())
def test_any_signed_payload_gets_201_200_or_400_and_a_400_stores_nothing(client, payload):
    before = counts()

    response = signed_post(client, json.dumps(payload).encode())

    assert response.status_code in (200, 201, 400), response.content
    if response.status_code == 400:
        assert counts() == before

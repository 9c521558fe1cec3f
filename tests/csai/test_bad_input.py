"""Input PostgreSQL cannot store: a NUL (0x00) in the path, a query parameter or a form
field is refused with 400 (JSON under /api/, a message in #flash for htmx, the site's page
otherwise) before any view can send it to the database — never a 500."""

import pytest

from tests.conftest import token_client
from tests.factories import TicketFactory
from tickets.models import Message

pytestmark = pytest.mark.django_db


@pytest.fixture
def supervisor_client(client, supervisor):
    client.force_login(supervisor)
    return client


@pytest.mark.parametrize(
    "url",
    [
        "/tickets/?q=%00",
        "/tickets/?q=refund%00please",
        "/review/?category=%00",
        "/review/?%00=1",
        "/supervisor/calibration/?decision_type=category%00",
        "/supervisor/autonomy/?format=%00csv",
    ],
)
def test_a_null_character_in_a_console_query_is_a_400_page(supervisor_client, url):
    response = supervisor_client.get(url)

    assert response.status_code == 400
    html = response.content.decode()
    assert "<html" in html and 'class="brand"' in html  # the site's layout
    assert "null character" in html


def test_a_null_character_is_a_flash_message_for_htmx(supervisor_client):
    response = supervisor_client.get("/tickets/?q=%00", HTTP_HX_REQUEST="true")

    assert response.status_code == 400
    assert response["HX-Retarget"] == "#flash"
    assert "<html" not in response.content.decode() and "null character" in response.content.decode()


def test_a_null_character_in_a_path_argument_is_a_400(supervisor_client):
    response = supervisor_client.post("/supervisor/autonomy/category%00/promote/", {"reason": "x"})

    assert response.status_code == 400


def test_a_null_character_in_a_form_field_is_a_400_and_stores_nothing(supervisor_client):
    ticket = TicketFactory()
    before = Message.objects.count()

    response = supervisor_client.post(f"/tickets/{ticket.pk}/reassign/", {"team": "billing\x00"})

    assert response.status_code == 400
    assert Message.objects.count() == before


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("get", "/api/v1/tickets/?status=%00"),
        ("get", "/api/v1/tickets/?cursor=%00"),
        ("get", "/api/v1/policies/category%00/readiness/"),
        ("post", "/api/v1/policies/category%00/promote/"),
    ],
)
def test_a_null_character_in_an_api_request_is_a_json_400(supervisor, method, url):
    response = getattr(token_client(supervisor), method)(url)

    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    assert "detail" in response.json() or "status" in response.json()


def test_a_plain_query_still_works(supervisor_client):
    assert supervisor_client.get("/tickets/?q=refund").status_code == 200

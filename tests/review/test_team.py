"""The team page: supervisors add people, set roles, deactivate them and manage API tokens."""

import logging
import re

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from csai.errors import ApplicationError
from review import team_services
from tests.factories import UserFactory
from tests.review.conftest import make_item
from tickets import roles

User = get_user_model()
PAGE = "/supervisor/team/"
PASSWORD = "correct horse battery staple"  # tests.factories.UserFactory
NEW_PASSWORD = "plum orchard lantern 42"


def actions(user_id: int = 1) -> list[str]:
    return [
        f"{PAGE}add/",
        *(
            f"{PAGE}{user_id}/{action}/"
            for action in ("role", "deactivate", "reactivate", "password", "token", "token/revoke")
        ),
    ]


def secret_in(response) -> str:
    match = re.search(r'<code class="secret" id="secret-value">([^<]+)</code>', response.content.decode())
    assert match, "no secret shown"
    return match.group(1)


def api_status(key: str) -> int:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client.get("/api/v1/tickets/").status_code


@pytest.fixture
def rita(db):
    return UserFactory(username="rita", first_name="Rita", last_name="Moreno", groups=[roles.REVIEWER])


# --- who may do what -----------------------------------------------------------------------


def test_it_shows_a_supervisor_the_page_or_its_fragment_for_htmx(supervisor_client, rita):
    page = supervisor_client.get(PAGE)
    html = page.content.decode()
    assert page.status_code == 200 and "<html" in html
    assert "rita" in html and "Rita Moreno" in html and "rita@example.com" in html
    assert 'href="/supervisor/team/"' in html  # the nav link
    fragment = supervisor_client.get(PAGE, HTTP_HX_REQUEST="true")
    assert fragment.status_code == 200
    assert "<html" not in fragment.content.decode() and 'id="team-main"' in fragment.content.decode()


@pytest.mark.parametrize("path", [PAGE, *actions()])
def test_it_sends_anonymous_users_to_the_login(client, db, path):
    response = client.get(path) if path == PAGE else client.post(path)
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/?next=")


@pytest.mark.parametrize("path", [PAGE, *actions()])
def test_it_refuses_reviewers_and_people_without_a_role(client, reviewer, outsider, rita, path):
    path = path.replace("/1/", f"/{rita.pk}/")
    for user in (reviewer, outsider):
        client.force_login(user)
        response = (
            client.get(path) if path == PAGE else client.post(path, {"role": "supervisor", "confirm": "1"})
        )
        assert response.status_code == 403
    rita.refresh_from_db()
    assert rita.is_active and list(rita.groups.values_list("name", flat=True)) == [roles.REVIEWER]
    assert not Token.objects.exists()


def test_the_nav_shows_the_team_link_to_supervisors_only(supervisor_client, reviewer):
    assert 'href="/supervisor/team/"' in supervisor_client.get("/review/").content.decode()
    other = Client()
    other.force_login(reviewer)
    assert 'href="/supervisor/team/"' not in other.get("/review/").content.decode()


def test_the_page_answers_405_to_a_post(supervisor_client):
    assert supervisor_client.post(PAGE).status_code == 405


@pytest.mark.parametrize("path", actions())
def test_actions_answer_405_to_a_get(supervisor_client, path):
    assert supervisor_client.get(path).status_code == 405


def test_an_unknown_person_is_404(supervisor_client):
    for path in actions(999999)[1:]:
        assert supervisor_client.post(path, {"role": "reviewer", "confirm": "1"}).status_code == 404


def test_the_page_takes_the_same_queries_for_three_people_or_thirty(supervisor_client, rita):
    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert supervisor_client.get(PAGE).status_code == 200
        return len(captured)

    few = queries()
    for n in range(27):
        user = UserFactory(username=f"person{n}", groups=[roles.REVIEWER])
        Token.objects.create(user=user)
    assert queries() == few


# --- adding people -------------------------------------------------------------------------


def test_a_supervisor_adds_a_reviewer_who_can_then_log_in_and_work_the_queue(supervisor_client):
    response = supervisor_client.post(
        f"{PAGE}add/",
        {"username": "nadia", "first_name": "Nadia", "last_name": "Haddad", "email": "nadia@example.com",
         "role": "reviewer"},
    )  # fmt: skip
    assert response.status_code == 200
    assert "Added nadia as reviewer." in response.content.decode()
    assert "no-store" in response["Cache-Control"]
    password = secret_in(response)

    nadia = User.objects.get(username="nadia")
    assert (nadia.get_full_name(), nadia.email) == ("Nadia Haddad", "nadia@example.com")
    assert nadia.is_active
    assert list(nadia.groups.values_list("name", flat=True)) == [roles.REVIEWER]
    entry = LogEntry.objects.get(object_id=str(nadia.pk))
    assert entry.user.username == "supervisor" and "Added as reviewer by supervisor" in entry.change_message

    # The password is shown once: the page never shows it again.
    assert password not in supervisor_client.get(PAGE).content.decode()

    item = make_item()
    reviewer = Client()
    assert reviewer.login(username="nadia", password=password)
    assert reviewer.get("/review/").status_code == 200
    assert reviewer.get(f"/review/tickets/{item.ticket_id}/").status_code == 200
    assert reviewer.get(PAGE).status_code == 403


def test_a_supervisor_may_choose_the_password_and_it_is_not_shown(supervisor_client):
    response = supervisor_client.post(
        f"{PAGE}add/", {"username": "omar", "role": "supervisor", "password": NEW_PASSWORD}, follow=True
    )
    html = response.content.decode()
    assert response.status_code == 200 and "Added omar as supervisor." in html
    assert NEW_PASSWORD not in html and 'class="secret"' not in html
    omar = Client()
    assert omar.login(username="omar", password=NEW_PASSWORD)
    assert omar.get(PAGE).status_code == 200


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ({"username": "", "role": "reviewer"}, "This field is required."),
        ({"username": "rita", "role": "reviewer"}, "The username rita is taken."),
        ({"username": "RITA", "role": "reviewer"}, "The username RITA is taken."),
        ({"username": "bad name!", "role": "reviewer"}, "Enter a valid username."),
        ({"username": "nadia", "role": "admin"}, "Select a valid choice."),
        ({"username": "nadia", "role": "reviewer", "password": "short"}, "too short"),
        ({"username": "nadia", "role": "reviewer", "password": "password123"}, "too common"),
        ({"username": "nadia", "role": "reviewer", "password": "nadia123"}, "too similar"),
        ({"username": "nadia", "role": "reviewer", "email": "not-an-email"}, "Enter a valid email address."),
    ],
)
def test_it_refuses_bad_input_with_the_reason_beside_the_field(supervisor_client, rita, data, error):
    response = supervisor_client.post(f"{PAGE}add/", data)
    assert response.status_code == 400 and error in response.content.decode()
    fragment = supervisor_client.post(f"{PAGE}add/", data, HTTP_HX_REQUEST="true")
    assert fragment.status_code == 400 and error in fragment.content.decode()
    assert "<html" not in fragment.content.decode()
    assert not User.objects.filter(username="nadia").exists()


# --- roles ---------------------------------------------------------------------------------


def test_a_supervisor_makes_a_reviewer_a_supervisor(supervisor_client, rita):
    response = supervisor_client.post(f"{PAGE}{rita.pk}/role/", {"role": "supervisor"})
    assert response.status_code == 302 and response["Location"] == PAGE
    assert "rita is now a supervisor." in supervisor_client.get(PAGE).content.decode()
    assert list(rita.groups.values_list("name", flat=True)) == [roles.SUPERVISOR]
    assert User.objects.get(pk=rita.pk).has_perm("review.manage_team")
    entry = LogEntry.objects.get(object_id=str(rita.pk))
    assert entry.change_message == "Role changed from reviewer to supervisor by supervisor."

    fragment = supervisor_client.post(f"{PAGE}{rita.pk}/role/", {"role": "reviewer"}, HTTP_HX_REQUEST="true")
    assert fragment.status_code == 200 and "rita is now a reviewer." in fragment.content.decode()
    assert list(rita.groups.values_list("name", flat=True)) == [roles.REVIEWER]


def test_it_refuses_an_unknown_role(supervisor_client, rita):
    assert supervisor_client.post(f"{PAGE}{rita.pk}/role/", {"role": "admin"}).status_code == 400
    assert list(rita.groups.values_list("name", flat=True)) == [roles.REVIEWER]


def test_a_supervisor_cannot_change_their_own_role_or_deactivate_themselves(supervisor_client, supervisor):
    for path, data in [
        ("role/", {"role": "reviewer"}),
        ("deactivate/", {}),
        ("deactivate/", {"confirm": "1"}),
        ("password/", {"confirm": "1"}),
    ]:
        response = supervisor_client.post(f"{PAGE}{supervisor.pk}/{path}", data)
        assert response.status_code == 403
        assert "yourself" in response.content.decode()
    supervisor.refresh_from_db()
    assert supervisor.is_active and supervisor.check_password(PASSWORD)
    assert list(supervisor.groups.values_list("name", flat=True)) == [roles.SUPERVISOR]
    htmx = supervisor_client.post(f"{PAGE}{supervisor.pk}/deactivate/", HTTP_HX_REQUEST="true")
    assert htmx.status_code == 403 and htmx["HX-Retarget"] == "#flash"


def test_accounts_managed_in_the_admin_are_out_of_reach(supervisor_client, db):
    boss = UserFactory(username="boss", is_staff=True, groups=[roles.ADMIN])
    Token.objects.create(user=boss)
    for path, data in [
        ("role/", {"role": "reviewer"}),
        ("deactivate/", {"confirm": "1"}),
        ("password/", {"confirm": "1"}),
        ("token/", {"confirm": "1"}),
        ("token/revoke/", {"confirm": "1"}),
    ]:
        response = supervisor_client.post(f"{PAGE}{boss.pk}/{path}", data)
        assert response.status_code == 403 and "managed in the admin" in response.content.decode()
    boss.refresh_from_db()
    assert boss.is_active and boss.check_password(PASSWORD) and Token.objects.filter(user=boss).exists()
    assert "managed in the admin" in supervisor_client.get(PAGE).content.decode()


# --- deactivation --------------------------------------------------------------------------


def test_a_deactivated_person_cannot_log_in_and_their_token_stops_working(supervisor_client, rita):
    key = Token.objects.create(user=rita).key
    assert api_status(key) == 200
    session = Client()
    session.force_login(rita)
    assert session.get("/review/").status_code == 200

    asking = supervisor_client.post(f"{PAGE}{rita.pk}/deactivate/")
    assert asking.status_code == 200 and "Deactivate rita?" in asking.content.decode()
    rita.refresh_from_db()
    assert rita.is_active  # not before the confirmation

    done = supervisor_client.post(f"{PAGE}{rita.pk}/deactivate/", {"confirm": "1"}, HTTP_HX_REQUEST="true")
    assert done.status_code == 200 and "Deactivated rita." in done.content.decode()
    rita.refresh_from_db()
    assert not rita.is_active
    assert not Token.objects.filter(user=rita).exists()
    assert api_status(key) == 401
    assert not Client().login(username="rita", password=PASSWORD)
    assert session.get("/review/").status_code == 302  # logged out with the next request
    entry = LogEntry.objects.get(object_id=str(rita.pk))
    assert entry.change_message == "Deactivated by supervisor, API token revoked."

    again = supervisor_client.post(f"{PAGE}{rita.pk}/deactivate/", {"confirm": "1"})
    assert again.status_code == 409
    # No token for a deactivated person.
    assert supervisor_client.post(f"{PAGE}{rita.pk}/token/").status_code == 400


def test_a_reactivated_person_logs_in_with_their_password(supervisor_client, rita):
    supervisor_client.post(f"{PAGE}{rita.pk}/deactivate/", {"confirm": "1"})
    response = supervisor_client.post(f"{PAGE}{rita.pk}/reactivate/")
    assert response.status_code == 302
    rita.refresh_from_db()
    assert rita.is_active
    assert Client().login(username="rita", password=PASSWORD)
    assert supervisor_client.post(f"{PAGE}{rita.pk}/reactivate/").status_code == 409


def test_a_new_password_replaces_the_old_one(supervisor_client, rita):
    asking = supervisor_client.post(f"{PAGE}{rita.pk}/password/")
    assert "Reset the password of rita?" in asking.content.decode()
    session = Client()
    assert session.login(username="rita", password=PASSWORD)
    response = supervisor_client.post(f"{PAGE}{rita.pk}/password/", {"confirm": "1"})
    assert response.status_code == 200 and "no-store" in response["Cache-Control"]
    password = secret_in(response)
    assert not Client().login(username="rita", password=PASSWORD)
    assert Client().login(username="rita", password=password)
    assert session.get("/review/").status_code == 302  # the old password's session ended


# --- API tokens ----------------------------------------------------------------------------


def test_a_token_is_shown_once_in_full_then_only_its_prefix(supervisor_client, rita):
    response = supervisor_client.post(f"{PAGE}{rita.pk}/token/", HTTP_HX_REQUEST="true")
    assert response.status_code == 200 and "no-store" in response["Cache-Control"]
    key = secret_in(response)
    assert key == Token.objects.get(user=rita).key
    assert api_status(key) == 200

    page = supervisor_client.get(PAGE).content.decode()
    assert key not in page
    assert f"<code>{key[:8]}…</code>" in page
    assert 'class="secret"' not in page
    entry = LogEntry.objects.get(object_id=str(rita.pk))
    assert entry.change_message == f"API token {key[:8]}… issued by supervisor."


def test_replacing_a_token_asks_first_and_the_old_one_stops_working(supervisor_client, rita):
    old = secret_in(supervisor_client.post(f"{PAGE}{rita.pk}/token/"))
    asking = supervisor_client.post(f"{PAGE}{rita.pk}/token/")
    assert "Replace the API token of rita?" in asking.content.decode() and old not in asking.content.decode()
    assert Token.objects.get(user=rita).key == old

    new = secret_in(supervisor_client.post(f"{PAGE}{rita.pk}/token/", {"confirm": "1"}))
    assert new != old
    assert api_status(old) == 401 and api_status(new) == 200


def test_a_supervisor_revokes_a_token(supervisor_client, supervisor, rita):
    key = secret_in(supervisor_client.post(f"{PAGE}{rita.pk}/token/"))
    asking = supervisor_client.post(f"{PAGE}{rita.pk}/token/revoke/")
    assert "Revoke the API token of rita?" in asking.content.decode()
    assert api_status(key) == 200

    done = supervisor_client.post(f"{PAGE}{rita.pk}/token/revoke/", {"confirm": "1"})
    assert done.status_code == 302
    assert api_status(key) == 401
    assert not Token.objects.filter(user=rita).exists()
    assert "Revoked the API token of rita." in supervisor_client.get(PAGE).content.decode()
    messages = LogEntry.objects.filter(object_id=str(rita.pk)).values_list("change_message", flat=True)
    assert f"API token {key[:8]}… revoked by supervisor." in messages


def test_a_supervisor_may_issue_their_own_token(supervisor_client, supervisor):
    key = secret_in(supervisor_client.post(f"{PAGE}{supervisor.pk}/token/"))
    assert api_status(key) == 200


def test_every_action_is_logged_with_who_did_it(supervisor_client, rita, caplog):
    with caplog.at_level(logging.INFO, logger="review.team_services"):
        supervisor_client.post(f"{PAGE}{rita.pk}/role/", {"role": "supervisor"})
        supervisor_client.post(f"{PAGE}{rita.pk}/token/")
        supervisor_client.post(f"{PAGE}{rita.pk}/token/revoke/", {"confirm": "1"})
        supervisor_client.post(f"{PAGE}{rita.pk}/deactivate/", {"confirm": "1"})
        supervisor_client.post(f"{PAGE}{rita.pk}/reactivate/")
    records = [r for r in caplog.records if r.name == "review.team_services"]
    assert [r.action for r in records] == ["role", "token-issue", "token-revoke", "deactivate", "reactivate"]
    assert {(r.actor, r.person) for r in records} == {("supervisor", "rita")}


def test_a_username_taken_meanwhile_is_a_409_not_a_500(supervisor, monkeypatch):
    UserFactory(username="nadia")
    monkeypatch.setattr(User.objects, "filter", lambda **_: User.objects.none())  # the check misses it
    with pytest.raises(ApplicationError) as refused:
        team_services.person_add(actor=supervisor, username="nadia", role="reviewer")
    assert refused.value.status_code == 409

"""Login, logout, the failed-login throttle, roles and integrators' API tokens."""

import pytest
from django.contrib.auth.models import Group

from tests.factories import UserFactory
from tickets import roles

PASSWORD = "correct horse battery staple"  # tests.factories.UserFactory


def login(client, username="reviewer", password=PASSWORD, address="10.0.0.1"):
    return client.post("/accounts/login/", {"username": username, "password": password}, REMOTE_ADDR=address)


def test_it_shows_our_login_page(client, db):
    page = client.get("/accounts/login/")
    html = page.content.decode()
    assert page.status_code == 200
    assert '<label for="id_username">Username</label>' in html and 'for="id_password"' in html


def test_it_logs_a_reviewer_in_to_the_queue(client, reviewer):
    response = login(client)
    assert response.status_code == 302 and response["Location"] == "/review/"
    assert client.get("/review/").status_code == 200


def test_it_logs_out_by_post_only(client, reviewer):
    client.force_login(reviewer)
    assert client.get("/accounts/logout/").status_code == 405
    assert client.post("/accounts/logout/").status_code == 302
    assert client.get("/review/").status_code == 302


def test_it_refuses_logins_after_too_many_failures_even_with_the_right_password(client, reviewer, settings):
    settings.CSAI_LOGIN_FAILURES = (3, 900)
    for _ in range(3):
        assert login(client, password="wrong").status_code == 200
    refused = login(client)
    assert refused.status_code == 429
    assert "Too many failed logins" in refused.content.decode()
    assert "_auth_user_id" not in client.session


def test_it_counts_failures_per_username_and_address(client, reviewer, settings):
    settings.CSAI_LOGIN_FAILURES = (2, 900)
    login(client, password="wrong")
    login(client, password="wrong")
    assert login(client, address="10.0.0.2").status_code == 302  # another address
    client.logout()
    UserFactory(username="colleague", groups=[roles.REVIEWER])
    assert login(client, username="colleague").status_code == 302  # another account


def test_it_forgets_failures_after_a_success(client, reviewer, settings):
    settings.CSAI_LOGIN_FAILURES = (2, 900)
    login(client, password="wrong")
    assert login(client).status_code == 302
    client.logout()
    login(client, password="wrong")
    assert login(client).status_code == 302


@pytest.mark.parametrize(
    ("role", "allowed"),
    [(roles.REVIEWER, True), (roles.SUPERVISOR, True), (roles.ADMIN, True), (None, False)],
)
def test_it_grants_the_queue_to_the_console_roles(db, role, allowed):
    user = UserFactory(groups=[role] if role else [])
    assert user.has_perm("review.work_queue") is allowed


def test_it_lets_admins_manage_api_tokens_in_the_admin(client, db):
    admin = UserFactory(username="admin", is_staff=True, groups=[roles.ADMIN])
    client.force_login(admin)
    assert client.get("/admin/authtoken/tokenproxy/").status_code == 200
    assert client.get("/admin/authtoken/tokenproxy/add/").status_code == 200
    staff_reviewer = UserFactory(username="staffreviewer", is_staff=True, groups=[roles.REVIEWER])
    client.force_login(staff_reviewer)
    assert client.get("/admin/authtoken/tokenproxy/").status_code == 403


def test_it_shows_supervisor_links_only_to_supervisors(client, reviewer, supervisor):
    client.force_login(reviewer)
    assert "/supervisor/autonomy/" not in client.get("/review/").content.decode()
    client.force_login(supervisor)
    html = client.get("/review/").content.decode()
    for page in ("autonomy", "alerts", "calibration", "dashboard"):
        assert f'href="/supervisor/{page}/"' in html
    assert Group.objects.filter(name=roles.SUPERVISOR).exists()


def test_it_explains_a_refusal_in_the_site_layout(client, outsider):
    client.force_login(outsider)
    response = client.get("/review/")
    assert response.status_code == 403
    assert "Your role does not include this page" in response.content.decode()

"""Guard: every URL the resolver knows answers each kind of user as tests/access.py says.

A route missing from the table fails, so a new view cannot ship without saying who may
use it; HEAD must answer as GET does.
"""

import re

import pytest
from django.conf import settings
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.authtoken.models import Token

from tests import access

pytestmark = pytest.mark.django_db

MISSING_ID = "999999"
MISSING_NAME = "no-such-thing"


def routes(patterns=None, prefix: str = "", namespace: str = ""):
    """(key, path) for every route: key is "namespace:name", or the route when unnamed."""
    for pattern in get_resolver().url_patterns if patterns is None else patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            inner = f"{namespace}{pattern.namespace}:" if pattern.namespace else namespace
            yield from routes(pattern.url_patterns, route, inner)
        elif isinstance(pattern, URLPattern):
            key = f"{namespace}{pattern.name}" if pattern.name else route
            yield key, "/" + sample_path(route)


def sample_path(route: str) -> str:
    """The route with an object that does not exist for each argument."""
    route = re.sub(r"<int:\w+>", MISSING_ID, route)
    route = re.sub(r"<(?:\w+:)?\w+>", MISSING_NAME, route)
    route = re.sub(r"\(\?P<\w+>[^)]*\)", MISSING_NAME, route)  # regex routes (the admin's)
    return route.replace("^", "").replace("$", "")


def expected(key: str, path: str) -> dict[str, dict[str, str]] | None:
    if key in access.ACCESS:
        return access.ACCESS[key]
    if path.startswith("/" + access.ADMIN_PREFIX):
        return access.ADMIN_OPEN.get(key, access.ADMIN_DEFAULT)
    return None


def answer_class(response) -> str:
    status = response.status_code
    if status == 401:
        return access.LOGIN
    if 300 <= status < 400:
        location = response["Location"]
        return access.LOGIN if location.startswith((settings.LOGIN_URL, "/admin/login/")) else access.OK
    if 200 <= status < 300:
        return access.OK
    return {400: access.INVALID, 403: access.DENIED, 404: access.MISSING}.get(status, f"HTTP {status}")


@pytest.fixture
def clients(outsider, reviewer, supervisor):
    """A client per kind of user: a session for pages, a token for the API."""

    def make(user, path: str) -> Client:
        if user is None:
            return Client()
        if path.startswith("/api/"):
            token, _ = Token.objects.get_or_create(user=user)
            return Client(HTTP_AUTHORIZATION=f"Token {token.key}")
        client = Client()
        client.force_login(user)
        return client

    users = {"anonymous": None, "outsider": outsider, "reviewer": reviewer, "supervisor": supervisor}
    return lambda who, path: make(users[who], path)


def test_every_route_is_in_the_access_table():
    known = {key for key, path in routes() if expected(key, path) is not None}
    unlisted = sorted({f"{key} ({path})" for key, path in routes() if key not in known})
    stale = sorted(set(access.ACCESS) - {key for key, _ in routes()})

    assert unlisted == [], "add these routes to tests/access.py"
    assert stale == [], "these routes in tests/access.py no longer exist"


def test_every_route_answers_each_user_as_the_access_table_says(clients):
    wrong = []
    for key, path in routes():
        for method, allowed in (expected(key, path) or {}).items():
            for who, want in allowed.items():
                client = clients(who, path)
                if method == "POST":
                    response = client.post(path, "{}", content_type="application/json")
                else:
                    response = getattr(client, method.lower())(path)
                got = answer_class(response)
                if got != want:
                    wrong.append(
                        f"{method} {path} as {who}: {got} ({response.status_code}), table says {want}"
                    )
                if method == "GET":
                    head = client.head(path)
                    if head.status_code != response.status_code:
                        wrong.append(
                            f"HEAD {path} as {who}: {head.status_code}, GET gave {response.status_code}"
                        )

    assert wrong == [], "\n".join(wrong)

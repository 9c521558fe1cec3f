"""Hardening: CSP without inline code, private pages not cached, HEAD wherever GET, and a
deployment with CSAI_HTTPS that passes `manage.py check --deploy`."""

import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from review import charts
from tests.conftest import token_client
from tests.csai.test_env import DEPLOYMENT

REPO = Path(__file__).resolve().parents[2]
# The pages the browser gets under the policy; mail bodies (a `mail/` folder) are read in mail
# clients, which only take inline styles, and are never served as pages.
TEMPLATES = [
    path
    for path in [*REPO.glob("templates/**/*.html"), *REPO.glob("*/templates/**/*.html")]
    if ".venv" not in path.parts and "mail" not in path.parts
]
# An inline script (no src), a <style> element, a style attribute or an on* handler.
INLINE = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>|<style\b|\sstyle=|\son[a-z]+=", re.I)


def test_the_policy_allows_no_inline_script_or_style_and_no_eval(settings):
    policy = dict(part.split(" ", 1) for part in settings.CSAI_CONTENT_SECURITY_POLICY.split("; "))

    assert policy["script-src"] == policy["style-src"] == "'self'"
    assert "unsafe" not in settings.CSAI_CONTENT_SECURITY_POLICY
    assert policy["frame-ancestors"] == "'none'"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("path", "logged_in"),
    [
        ("/", False),
        ("/accounts/login/", False),
        ("/review/", True),
        ("/api/docs/", True),
        ("/api/v1/tickets/", True),
    ],
)
def test_every_page_carries_the_policy(client, reviewer, settings, path, logged_in):
    if logged_in:
        client.force_login(reviewer)

    response = client.get(path)

    assert response.status_code == 200
    assert response["Content-Security-Policy"] == settings.CSAI_CONTENT_SECURITY_POLICY


def test_no_template_has_inline_script_style_or_event_handler():
    assert len(TEMPLATES) > 10, "the scan found too few templates"
    offenders = {
        str(path.relative_to(REPO)): INLINE.findall(path.read_text())
        for path in TEMPLATES
        if INLINE.search(path.read_text())
    }

    assert offenders == {}


@pytest.mark.django_db
def test_the_api_docs_load_their_start_up_script_from_a_url(client):
    page = client.get("/api/docs/").content.decode()
    script = client.get("/api/docs/?script=")

    assert not INLINE.search(page), INLINE.findall(page)
    assert 'src="/api/docs/?script="' in page
    assert script["Content-Type"].startswith("application/javascript")


def test_the_charts_draw_without_style_attributes():
    svg = charts.heatmap(title="Category", labels=["BILLING", "BUG"], matrix=[[3, 1], [0, 5]])

    assert not INLINE.search(svg), INLINE.findall(svg)


# --- private pages ------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_logged_in_page_is_private_and_not_stored(client, reviewer):
    client.force_login(reviewer)

    response = client.get("/review/")

    assert set(response["Cache-Control"].replace(" ", "").split(",")) >= {"private", "no-store"}


@pytest.mark.django_db
def test_an_api_answer_to_a_token_is_private_and_not_stored(reviewer):
    response = token_client(reviewer).get("/api/v1/tickets/")

    assert set(response["Cache-Control"].replace(" ", "").split(",")) >= {"private", "no-store"}


@pytest.mark.django_db
def test_an_anonymous_page_stays_cacheable(client):
    response = client.get("/")

    assert "no-store" not in response.get("Cache-Control", "")


# --- HEAD -----------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/review/", "/tickets/", "/health/", "/health/ready/", "/metrics"])
def test_head_is_answered_wherever_get_is(client, supervisor, path):
    client.force_login(supervisor)
    supervisor.is_staff = True  # /metrics without a token: staff only
    supervisor.save(update_fields=["is_staff"])

    get, head = client.get(path), client.head(path)

    assert head.status_code == get.status_code
    assert head.status_code in (200, 503), head.status_code  # /health/ready/: 503 while a check fails
    assert head.content == b""


# --- deployment ----------------------------------------------------------------------------


def deploy_check(**env) -> subprocess.CompletedProcess:
    """`manage.py check --deploy` with production settings (no DEBUG, real secrets)."""
    removed = {"PYTEST_VERSION", "SECRET_KEY", "DEBUG", "CSAI_WEBHOOK_SECRET", "CSAI_SECURE_COOKIES"}
    production = {
        **{k: v for k, v in os.environ.items() if k not in removed},
        **DEPLOYMENT,
        "DEBUG": "false",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "CSAI_WEBHOOK_SECRET": secrets.token_urlsafe(32),
        "ALLOWED_HOSTS": "support.example.com",
        "CSRF_TRUSTED_ORIGINS": "https://support.example.com",
        "CSAI_BEHIND_TLS_PROXY": "true",
    }
    return subprocess.run(  # noqa: S603
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        env={**production, **env},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_production_deployment_with_csai_https_passes_check_deploy():
    result = deploy_check(CSAI_HTTPS="true")

    assert result.returncode == 0, result.stderr + result.stdout


def test_without_csai_https_check_deploy_asks_for_hsts_and_the_redirect():
    result = deploy_check(CSAI_HTTPS="false")

    assert result.returncode != 0
    assert "security.W004" in result.stderr and "security.W008" in result.stderr


def test_csai_https_redirects_to_https_sends_hsts_and_keeps_the_probes_on_http(client, settings):
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_REDIRECT_EXEMPT = [r"^health/", r"^metrics$"]
    settings.SECURE_HSTS_SECONDS = 31536000
    settings.SECURE_HSTS_INCLUDE_SUBDOMAINS = True

    redirected = client.get("/accounts/login/")
    secure = client.get("/accounts/login/", secure=True)
    probe = client.get("/health/")

    assert redirected.status_code == 301
    assert redirected["Location"].startswith("https://")
    assert secure["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"
    assert probe.status_code == 200


def test_no_template_has_a_multi_line_short_comment():
    """``{# … #}`` is one line only; across lines Django prints it on the page."""
    offenders = [
        str(path.relative_to(REPO))
        for path in TEMPLATES
        if re.search(r"\{#(?:(?!#\}).)*\n", path.read_text())
    ]
    assert offenders == []

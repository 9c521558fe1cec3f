"""The supervisor pages: who may see them, phase changes through a confirm step, rollback,
alerts."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from autonomy.models import Alert, AutomationPolicy, PhaseTransition, RollbackPoint
from autonomy.services import transitions
from tests.review.conftest import set_phase

PAGES = ["/supervisor/autonomy/", "/supervisor/alerts/", "/supervisor/calibration/", "/supervisor/dashboard/"]
ACTIONS = [
    "/supervisor/autonomy/category/promote/",
    "/supervisor/autonomy/category/demote/",
    "/supervisor/rollback-points/1/restore/",
    "/supervisor/alerts/1/acknowledge/",
]


@pytest.fixture
def category(db):
    return set_phase("category", 2, threshold=0.8)


def alert(**fields) -> Alert:
    defaults = {
        "decision_type": "category", "type": Alert.Type.ACCURACY_DEGRADATION, "severity": "high",
        "metric": "autonomous_accuracy", "value": 0.81, "threshold": 0.85, "samples": 120,
        "recommendation": "Demote category to phase 2.", "proposed_phase": 2, "created_at": timezone.now(),
    }  # fmt: skip
    return Alert.objects.create(**{**defaults, **fields})


# --- who may see what ----------------------------------------------------------------------


@pytest.mark.parametrize("path", PAGES)
def test_it_shows_a_supervisor_the_full_page_or_the_fragment_for_htmx(supervisor_client, category, path):
    page = supervisor_client.get(path)
    assert page.status_code == 200
    assert "<html" in page.content.decode()
    fragment = supervisor_client.get(path, HTTP_HX_REQUEST="true")
    assert fragment.status_code == 200
    assert "<html" not in fragment.content.decode() and fragment.content.strip()


@pytest.mark.parametrize("path", PAGES + ACTIONS)
def test_it_sends_anonymous_users_to_the_login(client, path):
    response = client.get(path) if path in PAGES else client.post(path)
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/?next=")
    htmx = (
        client.get(path, HTTP_HX_REQUEST="true")
        if path in PAGES
        else client.post(path, HTTP_HX_REQUEST="true")
    )
    assert htmx.status_code == 401 and htmx["HX-Redirect"].startswith("/accounts/login/?next=")


@pytest.mark.parametrize("path", PAGES + ACTIONS)
def test_it_refuses_reviewers(reviewer_client, category, path):
    response = reviewer_client.get(path) if path in PAGES else reviewer_client.post(path, {"reason": "x"})
    assert response.status_code == 403
    category.refresh_from_db()
    assert category.phase == 2


@pytest.mark.parametrize("path", PAGES)
def test_pages_answer_405_to_a_post(supervisor_client, path):
    assert supervisor_client.post(path).status_code == 405


@pytest.mark.parametrize("path", ACTIONS)
def test_actions_answer_405_to_a_get(supervisor_client, path):
    assert supervisor_client.get(path).status_code == 405


def test_the_nav_shows_supervisor_links_to_supervisors_only(supervisor_client, reviewer, client):
    assert 'href="/supervisor/dashboard/"' in supervisor_client.get("/review/").content.decode()
    client.force_login(reviewer)
    assert 'href="/supervisor/dashboard/"' not in client.get("/review/").content.decode()


# --- autonomy ------------------------------------------------------------------------------


def test_the_autonomy_page_shows_phase_readiness_and_blockers(supervisor_client, category):
    html = supervisor_client.get("/supervisor/autonomy/").content.decode()
    assert "Phase 2 · assisted" in html
    assert "reviewed decisions none yet &lt; 200" in html or "reviewed decisions 0 &lt; 200" in html
    assert 'action="/supervisor/autonomy/category/promote/"' in html
    assert "Export readiness" in html and "?format=csv" in html


def test_promoting_without_confirm_shows_the_confirm_step_and_changes_nothing(supervisor_client, category):
    response = supervisor_client.post(
        "/supervisor/autonomy/category/promote/", {"reason": "agreement 91 % on 400", "from_phase": 2}
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert "Promote category from phase 2 to 3?" in html
    assert 'name="confirm" value="1"' in html and "agreement 91 % on 400" in html
    category.refresh_from_db()
    assert category.phase == 2 and not PhaseTransition.objects.exists()


def test_promoting_without_a_reason_is_refused(supervisor_client, category):
    for data in ({"reason": "  ", "confirm": "1"}, {"confirm": "1"}):
        response = supervisor_client.post(
            "/supervisor/autonomy/category/promote/", data, HTTP_HX_REQUEST="true"
        )
        assert response.status_code == 400 and "reason is required" in response.content.decode()
    category.refresh_from_db()
    assert category.phase == 2 and not PhaseTransition.objects.exists() and not RollbackPoint.objects.exists()


def test_promoting_with_reason_and_confirm_records_the_transition_and_a_rollback_point(
    supervisor_client, supervisor, category
):
    response = supervisor_client.post(
        "/supervisor/autonomy/category/promote/",
        {"reason": "agreement 91 % on 400", "from_phase": 2, "confirm": "1"},
        follow=True,
    )
    assert "Promoted category from phase 2 to 3." in response.content.decode()
    category.refresh_from_db()
    assert category.phase == 3
    transition = PhaseTransition.objects.get()
    assert (transition.direction, transition.from_phase, transition.to_phase) == ("promote", 2, 3)
    assert transition.actor == supervisor and transition.reason == "agreement 91 % on 400"
    assert transition.rollback_point.snapshot["phase"] == 2
    # The audit row and the rollback point are on the page.
    html = response.content.decode()
    assert (
        "agreement 91 % on 400" in html
        and f"/supervisor/rollback-points/{transition.rollback_point_id}/" in html
    )


def test_htmx_swaps_in_the_confirm_step_then_the_page_with_a_message(supervisor_client, category):
    confirm = supervisor_client.post(
        "/supervisor/autonomy/category/demote/",
        {"reason": "accuracy dropped", "from_phase": 2, "to_phase": 1},
        HTTP_HX_REQUEST="true",
    )
    html = confirm.content.decode()
    assert (
        "<html" not in html and 'id="autonomy-main"' in html and "Demote category from phase 2 to 1?" in html
    )
    done = supervisor_client.post(
        "/supervisor/autonomy/category/demote/",
        {"reason": "accuracy dropped", "from_phase": 2, "to_phase": 1, "confirm": "1"},
        HTTP_HX_REQUEST="true",
    )
    html = done.content.decode()
    assert "<html" not in html and "Demoted category from phase 2 to 1." in html
    assert AutomationPolicy.objects.get(decision_type="category").phase == 1


def test_a_stale_confirm_page_does_not_move_the_phase_twice(supervisor_client, category):
    data = {"reason": "ready", "from_phase": 2, "confirm": "1"}
    assert supervisor_client.post("/supervisor/autonomy/category/promote/", data).status_code == 302
    again = supervisor_client.post("/supervisor/autonomy/category/promote/", data, HTTP_HX_REQUEST="true")
    assert again.status_code == 409 and "phase 3 now" in again.content.decode()
    assert AutomationPolicy.objects.get(decision_type="category").phase == 3


def test_a_demotion_to_a_phase_out_of_range_is_refused(supervisor_client, category):
    response = supervisor_client.post(
        "/supervisor/autonomy/category/demote/",
        {"reason": "x", "to_phase": 3, "confirm": "1"},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 400
    assert AutomationPolicy.objects.get(decision_type="category").phase == 2


def test_restoring_a_rollback_point_brings_the_settings_back(supervisor_client, category):
    supervisor_client.post(
        "/supervisor/autonomy/category/promote/", {"reason": "ready", "from_phase": 2, "confirm": "1"}
    )
    AutomationPolicy.objects.filter(pk=category.pk).update(threshold=0.6, target_precision=0.8)
    point = RollbackPoint.objects.get()

    confirm = supervisor_client.post(
        f"/supervisor/rollback-points/{point.pk}/restore/", {"reason": "too early"}
    )
    assert f"Restore category to rollback point #{point.pk}" in confirm.content.decode()
    assert AutomationPolicy.objects.get(pk=category.pk).phase == 3

    done = supervisor_client.post(
        f"/supervisor/rollback-points/{point.pk}/restore/",
        {"reason": "too early", "confirm": "1"},
        follow=True,
    )
    assert f"Restored category to rollback point #{point.pk} (phase 2)." in done.content.decode()
    category.refresh_from_db()
    assert (category.phase, category.threshold, category.target_precision) == (2, 0.8, 0.9)
    assert PhaseTransition.objects.filter(direction="rollback", reason="too early").exists()


def test_restoring_needs_a_reason(supervisor_client, category):
    supervisor_client.post(
        "/supervisor/autonomy/category/promote/", {"reason": "ready", "from_phase": 2, "confirm": "1"}
    )
    point = RollbackPoint.objects.get()
    response = supervisor_client.post(
        f"/supervisor/rollback-points/{point.pk}/restore/", {"confirm": "1"}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 400
    assert AutomationPolicy.objects.get(pk=category.pk).phase == 3


def test_an_unknown_decision_type_or_point_is_404(supervisor_client, category):
    data = {"reason": "x", "confirm": "1"}
    assert supervisor_client.post("/supervisor/autonomy/nothing/promote/", data).status_code == 404
    assert supervisor_client.post("/supervisor/rollback-points/999/restore/", data).status_code == 404


# --- alerts --------------------------------------------------------------------------------


def test_alerts_list_open_first_then_acknowledged(supervisor_client, supervisor):
    seen = alert(type=Alert.Type.INPUT_DRIFT, acknowledged_at=timezone.now(), acknowledged_by=supervisor)
    open_ = alert(severity="critical", type=Alert.Type.OVERAUTOMATION_RISK)
    html = supervisor_client.get("/supervisor/alerts/").content.decode()
    assert html.index(f'id="alert-{open_.pk}"') < html.index(f'id="alert-{seen.pk}"')
    assert (
        "1 open" in html
        and f'<tr id="alert-{open_.pk}" class="open">' in html
        and "Overautomation Risk" in html
        and "Demote category to phase 2." in html
    )


def test_a_promotion_proposal_links_to_the_decision_and_a_closed_one_says_the_system_closed_it(
    supervisor_client,
):
    proposal = alert(
        type=Alert.Type.PROMOTION_READY, severity="info", proposed_phase=3,
        recommendation="Meets every criterion of phase 3 (supervised autonomy).",
    )  # fmt: skip
    closed = alert(
        type=Alert.Type.PROMOTION_READY, severity="info", acknowledged_at=timezone.now(),
        note="No longer ready: agreement 0.70 < 0.75.",
    )  # fmt: skip
    html = supervisor_client.get("/supervisor/alerts/").content.decode()
    row = html[html.index(f'id="alert-{proposal.pk}"') : html.index(f'id="alert-{closed.pk}"')]
    assert '<span class="sev sev-info">Info</span>' in row and "Phase 3 proposed:" in row
    assert 'href="/supervisor/autonomy/#policy-category">decide on the autonomy page' in row
    assert "system," in html[html.index(f'id="alert-{closed.pk}"') :]


def test_acknowledging_an_alert_swaps_its_row_and_the_open_count(supervisor_client, supervisor):
    item = alert()
    alert(type=Alert.Type.INPUT_DRIFT)  # still open after
    assert (
        '<span id="open-alerts" class="tag">2 open</span>'
        in supervisor_client.get("/supervisor/alerts/").content.decode()
    )
    response = supervisor_client.post(
        f"/supervisor/alerts/{item.pk}/acknowledge/", {"note": "looking at it"}, HTTP_HX_REQUEST="true"
    )
    html = response.content.decode()
    assert response.status_code == 200 and html.lstrip().startswith(f'<tr id="alert-{item.pk}"')
    assert "Alert acknowledged." in html and "looking at it" in html and "supervisor" in html
    assert '<span id="open-alerts" class="tag" hx-swap-oob="true">1 open</span>' in html
    item.refresh_from_db()
    assert item.acknowledged_by == supervisor and item.acknowledged_at and item.note == "looking at it"

    again = supervisor_client.post(f"/supervisor/alerts/{item.pk}/acknowledge/", follow=True)
    assert "Somebody acknowledged this alert already." in again.content.decode()


def test_alerts_export_as_csv_and_json(supervisor_client):
    item = alert()
    csv = supervisor_client.get("/supervisor/alerts/", {"format": "csv"})
    assert csv["Content-Type"].startswith("text/csv")
    lines = csv.content.decode().splitlines()
    assert lines[0].startswith("id,status,type,severity,decision_type,metric,value,threshold")
    assert lines[1].startswith(
        f"{item.pk},open,ACCURACY_DEGRADATION,high,category,autonomous_accuracy,0.81,0.85"
    )
    data = supervisor_client.get("/supervisor/alerts/", {"format": "json"}).json()
    assert data["alerts"][0]["id"] == item.pk and data["alerts"][0]["status"] == "open"


def test_an_unknown_export_format_is_400(supervisor_client):
    assert supervisor_client.get("/supervisor/alerts/", {"format": "xls"}).status_code == 400


def test_a_plain_form_refusal_comes_in_the_site_layout_with_a_way_back(supervisor_client, category):
    response = supervisor_client.post(
        "/supervisor/autonomy/category/promote/",
        {"reason": "", "confirm": "1"},
        HTTP_REFERER="http://testserver/supervisor/autonomy/",
    )
    html = response.content.decode()
    assert response.status_code == 400 and "<html" in html and "A reason is required" in html
    assert 'href="http://testserver/supervisor/autonomy/"' in html
    elsewhere = supervisor_client.post(
        "/supervisor/autonomy/category/promote/", {"confirm": "1"}, HTTP_REFERER="https://evil.example/"
    )
    assert "evil.example" not in elsewhere.content.decode()


def test_an_alert_that_proposes_a_phase_links_to_the_autonomy_page(supervisor_client):
    alert()
    html = supervisor_client.get("/supervisor/alerts/").content.decode()
    assert 'href="/supervisor/autonomy/#policy-category"' in html


@pytest.mark.parametrize("path", PAGES)
@pytest.mark.parametrize("export", ["csv", "json"])
def test_exports_need_the_supervisor_permission_too(client, reviewer, path, export):
    assert client.get(path, {"format": export}).status_code == 302
    client.force_login(reviewer)
    assert client.get(path, {"format": export}).status_code == 403


def test_the_autonomy_page_takes_as_many_queries_with_a_long_history(supervisor_client, supervisor):
    policy = set_phase("category", 2, threshold=0.8)
    set_phase("priority", 3, threshold=0.8)

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert supervisor_client.get("/supervisor/autonomy/").status_code == 200
        return len(captured)

    def round_trip() -> None:
        transitions.policy_promote(policy=policy, actor=supervisor, reason="agreement 91 % on 400 reviews")
        transitions.policy_demote(policy=policy, actor=supervisor, reason="not yet", to_phase=2)

    round_trip()
    few = queries()
    for _ in range(15):
        round_trip()  # 30 more transitions and rollback points
    assert queries() == few

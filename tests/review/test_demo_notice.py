"""The notice on console pages while demo history is built, and once it is there."""

from lab import journey


def test_no_notice_without_demo_history(supervisor_client):
    assert "demo-notice" not in supervisor_client.get("/supervisor/dashboard/").content.decode()


def test_the_notice_shows_the_progress_of_the_demo_history(supervisor_client):
    journey.status_set(state="building", done=420, total=1000)

    html = supervisor_client.get("/supervisor/dashboard/").content.decode()

    assert "Building the demo history:</strong> 420 / 1000 tickets" in html


def test_the_notice_says_the_data_is_demo_data_on_every_page(reviewer_client):
    journey.status_set(state="done", done=1000, total=1000)

    html = reviewer_client.get("/review/").content.decode()

    assert "<strong>Demo data.</strong>" in html and "demo-history" in html


def test_no_notice_before_login(client):
    journey.status_set(state="done", done=1000, total=1000)

    assert "demo-notice" not in client.get("/accounts/login/").content.decode()

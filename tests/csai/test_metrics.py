import pytest
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from csai import metrics
from tests.conftest import signed_post, ticket_payload
from tests.factories import TicketFactory, UserFactory
from tickets import tasks

pytestmark = pytest.mark.django_db
TOKEN = "scrape-token-for-tests"


@pytest.fixture(autouse=True)
def _token(settings):
    settings.CSAI_METRICS_TOKEN = TOKEN


def scrape(client) -> dict[tuple[str, tuple], float]:
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.content.decode())
        for sample in family.samples
    }


def test_it_counts_webhook_answers_by_status_and_times_them(client):
    signed_post(client, ticket_payload())
    signed_post(client, ticket_payload())
    signed_post(client, ticket_payload(), secret="wrong")

    samples = scrape(client)

    assert samples[("csai_webhook_requests_total", (("status", "201"),))] == 1
    assert samples[("csai_webhook_requests_total", (("status", "200"),))] == 1
    assert samples[("csai_webhook_requests_total", (("status", "401"),))] == 1
    assert samples[("csai_webhook_request_duration_seconds_count", ())] == 3
    assert samples[("csai_webhook_request_duration_seconds_bucket", (("le", "+Inf"),))] == 3
    assert samples[("csai_webhook_request_duration_seconds_sum", ())] > 0


def test_it_counts_tickets_from_the_database(client):
    TicketFactory.create_batch(2)
    TicketFactory(status="escalated", sla_state="breached")

    samples = scrape(client)

    assert samples[("csai_tickets", (("status", "new"),))] == 2
    assert samples[("csai_tickets", (("status", "escalated"),))] == 1
    assert samples[("csai_open_tickets_sla", (("sla_state", "breached"),))] == 1
    assert samples[("csai_tickets_awaiting_intake", ())] == 3


def test_it_counts_finished_celery_tasks(client):
    tasks.sla_refresh.apply()

    samples = scrape(client)

    assert samples[("csai_tasks_total", (("state", "SUCCESS"), ("task", "tickets.tasks.sla_refresh")))] == 1


@pytest.mark.parametrize("header", [None, "Bearer wrong", f"Token {TOKEN}"])
def test_without_the_token_metrics_are_refused(client, header):
    extra = {"HTTP_AUTHORIZATION": header} if header else {}

    assert client.get("/metrics", **extra).status_code == 403


def test_staff_can_read_metrics_in_the_browser_and_others_cannot(client, reviewer):
    staff = UserFactory(username="ops", is_staff=True)

    client.force_login(reviewer)
    assert client.get("/metrics").status_code == 403
    client.force_login(staff)
    assert client.get("/metrics").status_code == 200


def test_metrics_only_answer_get(client):
    assert client.post("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").status_code == 405


def test_it_shows_pipeline_runs_and_dead_letters_waiting_for_a_person(client):
    from agents.models import DeadLetter, PipelineRun

    tickets = TicketFactory.create_batch(2)
    now = timezone.now()
    for ticket, status in zip(tickets, ["done", "dead"], strict=True):
        PipelineRun.objects.create(ticket=ticket, number=1, status=status, correlation_id="c", started_at=now)
    letter = {"task_name": "agents.tasks.select_step", "error_type": "ValueError", "error_message": "x"}
    DeadLetter.objects.create(**letter, attempts=1, created_at=now)
    DeadLetter.objects.create(**letter, attempts=1, created_at=now, retried_at=now)

    samples = scrape(client)

    assert samples[("csai_pipeline_runs", (("status", "dead"),))] == 1
    assert samples[("csai_dead_letters_open", ())] == 1


def test_it_shows_the_restarts_make_run_published(client):
    assert metrics.record_launcher_restarts({"worker": 2, "web": 0, "redis": 1})
    assert metrics.record_launcher_restarts({"worker": 3, "web": 0})  # a new launcher: its own names

    samples = scrape(client)

    assert samples[("csai_launcher_restarts_total", (("process", "worker"),))] == 3
    assert samples[("csai_launcher_restarts_total", (("process", "web"),))] == 0
    assert ("csai_launcher_restarts_total", (("process", "redis"),)) not in samples

import pytest
from django.utils import timezone

from agents import llm, loaded
from agents.ml import TextClassifier
from agents.models import ModelVersion
from csai.celery import app as celery_app
from lab import starter
from lab.fake_anthropic import FakeAnthropic
from tests.factories import CustomerFactory, TicketFactory
from tickets.models import Ticket, Tier

TRAINING_TICKETS = 400


@pytest.fixture(scope="session")
def demo_classifiers() -> dict[str, TextClassifier]:
    """Category and priority models trained once per session on demo history (no database)."""
    rows = list(starter.history_rows(count=TRAINING_TICKETS))
    texts = [f"{row.subject}\n{row.body}" for row in rows]
    return {
        decision_type: TextClassifier.fit(texts, [row.labels[decision_type] for row in rows])
        for decision_type in ("category", "priority")
    }


@pytest.fixture
def trained_models(db, demo_classifiers) -> dict[str, ModelVersion]:
    """The session's models registered as the active versions."""
    loaded.forget_loaded()
    versions = {
        decision_type: ModelVersion.objects.create(
            decision_type=decision_type,
            version=1,
            algorithm=classifier.ALGORITHM,
            artifact=classifier.to_bytes(),
            training_size=TRAINING_TICKETS,
            labels=classifier.labels,
            is_active=True,
            trained_at=timezone.now(),
        )
        for decision_type, classifier in demo_classifiers.items()
    }
    yield versions
    loaded.forget_loaded()


@pytest.fixture
def knowledge(db):
    starter.knowledge_load()
    loaded.forget_loaded()


@pytest.fixture
def eager_celery():
    """Tasks run inline where they are sent; on_commit callbacks still decide when."""
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = False


BILLING_TEXT = (
    "Hello, invoice INV-2024-76687 shows $5,799.66 but our plan (Business, 80 seats) should come to "
    "$2,899.83. Could someone explain the difference? We were charged twice on account ACC-450679."
)


@pytest.fixture
def triaged_ticket(db):
    """A billing question from a standard customer, waiting in triage."""
    return TicketFactory(
        subject="Question about invoice INV-2024-76687",
        body=BILLING_TEXT,
        stage=Ticket.Stage.CLASSIFIER,
        customer=CustomerFactory(name="Maria Lindqvist", tier=Tier.STANDARD),
    )


# --- a local fake of the Anthropic Messages API (lab.fake_anthropic) ---------------------
# The real SDK talks to it (settings.ANTHROPIC_BASE_URL), retries and timeouts included.

API_KEY = "test-key-must-never-be-logged"


@pytest.fixture
def fake_api(settings):
    fake = FakeAnthropic().start()
    settings.ANTHROPIC_API_KEY = API_KEY
    settings.ANTHROPIC_BASE_URL = fake.url
    settings.CSAI_LLM_MODEL = "claude-sonnet-4-6"
    settings.CSAI_LLM_MAX_TOKENS = 512
    settings.CSAI_LLM_TIMEOUT_SECONDS = 5
    settings.CSAI_LLM_MAX_RETRIES = 2
    llm.reset_client()
    yield fake
    fake.stop()
    llm.reset_client()

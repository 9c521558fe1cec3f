import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.utils import timezone

from agents import llm, loaded
from agents.ml import TextClassifier
from agents.models import ModelVersion
from csai.celery import app as celery_app
from lab import starter
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


# --- a local fake of the Anthropic Messages API ----------------------------------------
# anthropic 2.x sends through httpx2, which respx cannot intercept; the real SDK talks to
# this server instead (settings.ANTHROPIC_BASE_URL), retries and timeouts included.

API_KEY = "test-key-must-never-be-logged"


def tool_reply(tool_input, *, model="claude-sonnet-4-5-20250929", stop_reason="tool_use", content=None):
    return {
        "id": "msg_01",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content
        if content is not None
        else [{"type": "tool_use", "id": "toolu_01", "name": "classify", "input": tool_input}],
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": {"input_tokens": 400, "output_tokens": 60},
    }


def api_error(status):
    return {"type": "error", "error": {"type": "api_error", "message": f"fake {status}"}}


class FakeAnthropic:
    """Answers POST /v1/messages from a script of replies (the last one repeats) and keeps every request."""

    def __init__(self):
        self.script: list[tuple[int, dict | None, dict]] = []
        self.requests: list[dict] = []
        self.release = threading.Event()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                raw = self.rfile.read(int(self.headers.get("content-length", 0)))
                request = {"path": self.path, "headers": dict(self.headers), "json": json.loads(raw)}
                fake.requests.append(request)
                status, body, headers = fake.script[min(len(fake.requests), len(fake.script)) - 1]
                if body is None:  # hang until the test ends: the client must time out
                    fake.release.wait(10)
                    return
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def reply(self, status=200, body=None, **headers):
        self.script.append((status, body, {name.replace("_", "-"): v for name, v in headers.items()}))

    def hang(self):
        self.script.append((0, None, {}))


@pytest.fixture
def fake_api(settings):
    fake = FakeAnthropic()
    thread = threading.Thread(target=fake.server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    settings.ANTHROPIC_API_KEY = API_KEY
    settings.ANTHROPIC_BASE_URL = fake.url
    settings.CSAI_LLM_MODEL = "claude-sonnet-4-6"
    settings.CSAI_LLM_MAX_TOKENS = 512
    settings.CSAI_LLM_TIMEOUT_SECONDS = 5
    settings.CSAI_LLM_MAX_RETRIES = 2
    llm.reset_client()
    yield fake
    fake.release.set()
    fake.server.shutdown()
    fake.server.server_close()
    llm.reset_client()

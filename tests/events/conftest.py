import pytest

from events import services
from tests.conftest import start_worker
from tests.events.receiver import Receiver

# Retries a worker makes in the tests: seconds apart instead of minutes and hours.
FAST_SCHEDULE = "0.3,0.3,0.3,0.3,0.3,0.3,0.3"


@pytest.fixture(autouse=True)
def _events_settings(settings):
    """Receivers run on this machine; retries come at once (tests that send inline)."""
    settings.CSAI_WEBHOOK_ALLOW_PRIVATE = True
    settings.CSAI_EVENT_RETRY_SCHEDULE = [0.0] * 7
    settings.CSAI_EVENT_TIMEOUT_SECONDS = 15


@pytest.fixture(autouse=True)
def _no_countdown_tasks(request, monkeypatch):
    """Inline tests make each attempt themselves: no retry is queued for a worker (unless
    the test has one)."""
    if request.node.get_closest_marker("worker") is None:
        monkeypatch.setattr(services, "_enqueue_send", lambda *args, **kwargs: None)


@pytest.fixture
def receiver():
    started = Receiver().start()
    try:
        yield started
    finally:
        started.stop()


@pytest.fixture
def endpoint_for(db):
    def make(receiver: Receiver, **fields):
        endpoint = services.endpoint_create(url=receiver.url, **fields)
        receiver.secret = endpoint.secret
        return endpoint

    return make


# A worker of these tests: receivers on loopback, retries seconds apart, a short HTTP timeout.
WORKER_ENV = {
    "CSAI_WEBHOOK_ALLOW_PRIVATE": "true",
    "CSAI_EVENT_RETRY_SCHEDULE": FAST_SCHEDULE,
    "CSAI_EVENT_TIMEOUT_SECONDS": "2",
}


@pytest.fixture
def events_worker(tmp_path):
    started = start_worker(tmp_path / "worker.log", **WORKER_ENV)
    try:
        yield started
    finally:
        started.process.terminate()
        started.process.wait(timeout=30)

import asyncio
import email
import email.message
import email.policy
import json
import os
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings
from django.core.cache import cache
from django.db import connection
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from csai.celery import app as celery_app
from csai.celery import worker_queues
from tests.factories import UserFactory
from tickets import roles, webhooks

WEBHOOK_SECRET = "test-webhook-secret"
WEBHOOK_URL = "/api/v1/webhooks/tickets"
MESSAGES_URL = "/api/v1/webhooks/messages"


@pytest.fixture(autouse=True)
def _webhook_secret(settings):
    settings.CSAI_WEBHOOK_SECRET = WEBHOOK_SECRET


@pytest.fixture(autouse=True)
def _clean_cache():
    """Throttle counters live in the (test-only) Redis cache; every test starts fresh."""
    cache.clear()
    yield


@pytest.fixture
def reviewer(db):
    return UserFactory(username="reviewer", groups=[roles.REVIEWER])


@pytest.fixture
def supervisor(db):
    return UserFactory(username="supervisor", groups=[roles.SUPERVISOR])


@pytest.fixture
def outsider(db):
    """Logged in, but in no group: may see nothing."""
    return UserFactory(username="outsider")


def token_client(user) -> APIClient:
    client = APIClient()
    token, _ = Token.objects.get_or_create(user=user)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


def ticket_payload(**overrides) -> dict:
    payload = {
        "source": "zendesk",
        "external_id": "ZD-1001",
        "subject": "Card payment declined at checkout",
        "body": "Hi, my card keeps getting declined with ERR_PAYMENT_402 on order ORD-2024-004512.",
        "channel": "email",
        "customer": {
            "external_id": "ACME-17",
            "name": "Dana Whitfield",
            "email": "dana@acme.example",
            "company": "Acme Corp",
            "tier": "PREMIUM",
        },
        "metadata": {"locale": "en-GB"},
    }
    payload.update(overrides)
    return payload


def signed_post(
    client,
    body: bytes | dict,
    *,
    secret: str = WEBHOOK_SECRET,
    timestamp=None,
    url: str = WEBHOOK_URL,
    **headers,
):
    raw = json.dumps(body).encode() if isinstance(body, dict) else body
    headers.setdefault("HTTP_X_CSAI_SIGNATURE", webhooks.sign(secret=secret, body=raw, timestamp=timestamp))
    headers.setdefault("content_type", "application/json")
    return client.post(url, raw, **headers)


# --- a real Celery worker -------------------------------------------------------------

REPO = Path(__file__).resolve().parents[1]


def purge_queues():
    with celery_app.connection_for_write() as conn:
        for queue in worker_queues().split(","):
            conn.default_channel.queue_purge(queue)


@dataclass
class Worker:
    process: subprocess.Popen
    log: Path

    def wait_for(self, predicate, timeout=60.0) -> bool:
        """Poll until ``predicate`` holds; give up early if the worker died."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.process.poll() is None:
            if predicate():
                return True
            time.sleep(0.2)
        return False

    def output(self) -> str:
        return self.log.read_text()[-3000:]


def start_worker(log: Path, **extra_env: str) -> Worker:
    """A real Celery worker process on the test database and Redis, logging to ``log``."""
    db = connection.settings_dict
    env = {
        **os.environ,
        "DATABASE_URL": f"postgresql://{db['USER']}@{quote(db['HOST'], safe='')}/{db['NAME']}",
        "REDIS_URL": settings.REDIS_URL,
        "SECRET_KEY": settings.SECRET_KEY,
        "CSAI_WEBHOOK_SECRET": settings.CSAI_WEBHOOK_SECRET,
        "ANTHROPIC_API_KEY": "",
        **extra_env,
    }
    command = [sys.executable, "-m", "celery", "-A", "csai", "worker", "--pool=solo", "-Q", worker_queues()]
    with open(log, "w") as out:
        process = subprocess.Popen(  # noqa: S603
            [*command, "--loglevel=INFO"], cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    return Worker(process, log)


@pytest.fixture
def worker(tmp_path):
    """Start a worker on the test database; stop it afterwards."""
    started = start_worker(tmp_path / "worker.log")
    try:
        yield started
    finally:
        started.process.terminate()
        started.process.wait(timeout=30)


# --- a real SMTP server ---------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class SMTPServer:
    """A real SMTP server (aiosmtpd) on a port of its own, keeping every mail it accepts.

    ``stop()`` / ``start()`` take it down and bring it back on the same port. ``answer`` set
    to an SMTP reply ("550 5.1.1 No such user") refuses each recipient with it; ``hold()``
    makes it keep a client waiting after MAIL FROM, until ``release()``.
    """

    def __init__(self):
        self.port = free_port()
        self.messages: list[email.message.EmailMessage] = []
        self.answer: str | None = None
        self.waiting = threading.Event()  # a client is being held
        self._held = False
        self._controller = None

    def start(self) -> "SMTPServer":
        from aiosmtpd.controller import Controller

        self._controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def hold(self) -> None:
        self._held = True

    def release(self) -> None:
        self._held = False

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
        self.waiting.set()
        while self._held:
            await asyncio.sleep(0.05)
        if self.answer:
            return self.answer
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        self.messages.append(email.message_from_bytes(envelope.original_content, policy=email.policy.default))
        return "250 Message accepted"

    def wait_for_mail(self, count: int = 1, timeout: float = 60.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.messages) >= count:
                return True
            time.sleep(0.1)
        return False

    def env(self) -> dict[str, str]:
        """A worker's mail settings for this server."""
        return {
            "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "EMAIL_HOST": "127.0.0.1",
            "EMAIL_PORT": str(self.port),
            "EMAIL_TIMEOUT": "2",
            "DEFAULT_FROM_EMAIL": "support@csai.example",
        }


@pytest.fixture
def smtp_server():
    """A running SMTP server; stopped after the test."""
    server = SMTPServer().start()
    try:
        yield server
    finally:
        server.release()
        server.stop()


@pytest.fixture
def mail_to(settings):
    """Point this process's mail settings at an ``SMTPServer``: ``mail_to(smtp_server)``."""

    def point(server: SMTPServer) -> SMTPServer:
        for name, value in server.env().items():
            setattr(settings, name, int(value) if name in ("EMAIL_PORT", "EMAIL_TIMEOUT") else value)
        return server

    return point

"""Replies delivered by a real Celery worker to a real SMTP server (aiosmtpd), through its
faults: the server down (retrying, then sent once it is back, or failed when it never is), and
the worker SIGKILLed in the middle of a delivery (sent once, after the sweep)."""

import time
from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from tests.conftest import SMTPServer, purge_queues, start_worker
from tests.factories import TicketFactory
from tickets import delivery
from tickets.models import Message, Ticket
from tickets.services import message_post
from tickets.tasks import message_deliver

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]


def post_reply(body: str = "Hi, your refund is on its way.") -> Message:
    """A reply stored on a new email ticket, as an applied decision writes it; its delivery task
    is enqueued when the transaction commits."""
    ticket = TicketFactory()
    with transaction.atomic():
        return message_post(
            ticket=ticket, kind="external", sender_kind="ai_agent", sender_id="ai", content=body
        )


def state(message: Message) -> str:
    message.refresh_from_db()
    return message.delivery


@pytest.fixture
def clean_queues():
    purge_queues()
    yield
    purge_queues()


def test_the_server_down_shows_retrying_and_the_reply_goes_out_once_it_is_back(tmp_path, clean_queues):
    server = SMTPServer()  # not started: its port refuses connections
    worker = start_worker(tmp_path / "worker.log", CSAI_MAIL_RETRY_SCHEDULE="1,2,3,3,3", **server.env())
    try:
        reply = post_reply()
        assert worker.wait_for(lambda: state(reply) == "retrying"), worker.output()
        assert "could not be reached" in reply.delivery_error
        assert Ticket.objects.get(pk=reply.ticket_id).first_response_at is None

        server.start()
        assert worker.wait_for(lambda: state(reply) == "sent", 60), worker.output()
        assert server.wait_for_mail(1) and len(server.messages) == 1
        assert reply.delivery_attempts >= 2 and reply.delivery_error == ""
        assert Ticket.objects.get(pk=reply.ticket_id).first_response_at == reply.delivered_at
    finally:
        worker.process.terminate()
        worker.process.wait(timeout=30)
        server.stop()


def test_the_server_never_back_fails_the_reply_after_the_last_retry(tmp_path, clean_queues):
    server = SMTPServer()  # never started
    worker = start_worker(tmp_path / "worker.log", CSAI_MAIL_RETRY_SCHEDULE="0.5,0.5", **server.env())
    try:
        reply = post_reply()
        assert worker.wait_for(lambda: state(reply) == "failed"), worker.output()
        assert reply.delivery_attempts == 3 and "could not be reached" in reply.delivery_error
        assert reply.delivery_due_at is None
    finally:
        worker.process.terminate()
        worker.process.wait(timeout=30)


def test_a_worker_killed_mid_delivery_and_a_task_delivered_twice_send_one_mail(tmp_path, clean_queues):
    server = SMTPServer().start()
    server.hold()  # the first attempt waits after MAIL FROM, its mail not yet accepted
    first = start_worker(tmp_path / "first.log", **server.env())
    second = None
    try:
        reply = post_reply()
        assert server.waiting.wait(60), first.output()
        first.process.kill()  # SIGKILL, in the middle of the SMTP conversation
        first.process.wait(timeout=30)
        server.release()

        second = start_worker(tmp_path / "second.log", **server.env())
        reply.refresh_from_db()
        assert (reply.delivery, reply.delivery_attempts) == ("queued", 1)  # claimed by the dead worker
        # Nobody else touches it until its claim runs out; then the sweep sends it again.
        time.sleep(max(0.0, (reply.delivery_due_at - timezone.now()).total_seconds()) + 0.5)
        assert delivery.deliveries_sweep(grace=timedelta(0)) == 1
        assert second.wait_for(lambda: state(reply) == "sent", 60), second.output()
        assert reply.delivery_attempts == 2

        # The same task delivered again sends nothing.
        message_deliver.delay(reply.pk)
        message_deliver.delay(reply.pk)
        twice = lambda: second.log.read_text().count("s: 'already-sent'") == 2  # noqa: E731
        assert second.wait_for(twice, 30), second.output()
        assert len(server.messages) == 1
    finally:
        server.release()
        for worker in (first, second):
            if worker is not None and worker.process.poll() is None:
                worker.process.terminate()
                worker.process.wait(timeout=30)
        server.stop()

import json
import logging
import os
import signal
import time
from collections import Counter

import httpx
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from lab.demo import FOLLOW_UP_SHARE, FollowUp, iter_traffic
from tickets import webhooks
from tickets.selectors import mail_thread

logger = logging.getLogger(__name__)

WEBHOOK_PATH = "/api/v1/webhooks/tickets"
MESSAGES_PATH = "/api/v1/webhooks/messages"


def _default_url() -> str:
    return os.environ.get("CSAI_URL") or f"http://127.0.0.1:{os.environ.get('PORT', '8000')}"


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def _follow_up_payload(follow_up: FollowUp) -> tuple[dict, bool]:
    """The follow-up's webhook body and whether it answers one of our mails: a customer's mail
    (or auto-reply) to our last delivered reply carries its threading headers and no ticket
    id; without a delivered reply it goes by the ticket's id."""
    thread = []
    if follow_up.kind != "message":
        thread = mail_thread(source=follow_up.ticket["source"], external_id=follow_up.ticket["external_id"])
    if thread:
        return follow_up.payload(in_reply_to=thread[-1], references=thread), True
    return follow_up.payload(), False


def _post(client: httpx.Client, *, endpoint: str, payload: dict, secret: str) -> str:
    """Send one signed ticket or message; returns "201", "200" or "error". Never raises."""
    body = json.dumps(payload).encode()
    headers = {
        "Content-Type": "application/json",
        webhooks.HEADER: webhooks.sign(secret=secret, body=body),
    }
    try:
        response = client.post(endpoint, content=body, headers=headers)
    except httpx.HTTPError as error:  # server not up yet, restarting, timed out, ...
        logger.warning("demo traffic not delivered", extra={"url": endpoint, "error": str(error)})
        return "error"
    if response.status_code in (200, 201):
        return str(response.status_code)
    logger.warning(
        "demo traffic refused",
        extra={"url": endpoint, "status": response.status_code, "response": response.text[:200]},
    )
    return "error"


class Command(BaseCommand):
    help = (
        "Post demo tickets to a running server through the signed webhook, at a steady rate, "
        "until --count or --duration is reached or Ctrl-C; now and then a customer writes again "
        "on one of the run's tickets through the signed messages webhook (by email answering our "
        "last delivered reply, and a few out-of-office auto-replies). The seed defaults to the current "
        "time, so every run sends new tickets; pass --seed to replay a run (a replay is answered "
        "200: the tickets already exist)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--rate", type=float, default=2.0, help="Tickets per second (default 2).")
        parser.add_argument(
            "--url", default=None, help="Server base URL (default $CSAI_URL or http://127.0.0.1:$PORT)."
        )
        parser.add_argument(
            "--secret", default=None, help="Webhook secret (default settings.CSAI_WEBHOOK_SECRET)."
        )
        parser.add_argument("--count", type=int, default=None, help="Stop after this many tickets.")
        parser.add_argument("--duration", type=float, default=None, help="Stop after this many seconds.")
        parser.add_argument("--seed", type=int, default=None, help="Default: the current Unix time.")
        parser.add_argument("--source", default="demo", help='Ticket source (default "demo").')
        parser.add_argument(
            "--follow-ups",
            type=float,
            default=FOLLOW_UP_SHARE,
            help=f"Share of the traffic that is customers writing again (default {FOLLOW_UP_SHARE:g}).",
        )

    def handle(
        self,
        *args,
        rate: float,
        url: str | None,
        secret: str | None,
        count: int | None,
        duration: float | None,
        seed: int | None,
        source: str,
        follow_ups: float,
        **options,
    ):
        if rate <= 0:
            raise CommandError("--rate must be greater than 0.")
        if not 0 <= follow_ups < 1:
            raise CommandError("--follow-ups must be at least 0 and below 1.")
        secret = secret or settings.CSAI_WEBHOOK_SECRET
        if not secret:
            raise CommandError("No webhook secret: set CSAI_WEBHOOK_SECRET or pass --secret.")
        url = (url or _default_url()).rstrip("/")
        if not url.startswith(("http://", "https://")):
            raise CommandError(f"--url must start with http:// or https://, got {url!r}.")
        seed = int(time.time()) if seed is None else seed
        endpoint = url + WEBHOOK_PATH
        self.stdout.write(f"Sending demo tickets to {endpoint} at {rate:g}/s (seed {seed}); Ctrl-C stops.")

        results: Counter[str] = Counter()
        written: Counter[str] = Counter()  # follow-ups: sent, by mail, auto-replies, errors
        interval = 1 / rate
        started = next_at = time.monotonic()
        traffic = iter_traffic(seed=seed, source=source, follow_up_share=follow_ups)
        # SIGTERM (how `make run` stops its children) ends the run as cleanly as Ctrl-C.
        previous_handler = signal.signal(signal.SIGTERM, _interrupt)
        try:
            with httpx.Client(timeout=10) as client:
                while count is None or results.total() < count:
                    if duration is not None and next_at - started >= duration:
                        break
                    time.sleep(max(0.0, next_at - time.monotonic()))
                    item = next(traffic)
                    if isinstance(item, FollowUp):
                        payload, by_mail = _follow_up_payload(item)
                        status = _post(client, endpoint=url + MESSAGES_PATH, payload=payload, secret=secret)
                        written.update(
                            ["sent"]
                            + ["by mail"] * by_mail
                            + ["auto-replies"] * (item.kind == "auto_reply")
                            + ["errors"] * (status == "error")
                        )
                    else:
                        results[_post(client, endpoint=endpoint, payload=item, secret=secret)] += 1
                    # Steady pacing: a slow response delays the next send, no catch-up burst.
                    next_at = max(next_at + interval, time.monotonic())
        except KeyboardInterrupt:
            self.stdout.write("Interrupted.")
        finally:
            signal.signal(signal.SIGTERM, previous_handler)
        self.stdout.write(
            f"Sent {results.total()}: {results['201']} created (201), "
            f"{results['200']} already there (200), {results['error']} errors."
        )
        self.stdout.write(
            f"Customers wrote again {written['sent']} times: {written['by mail']} by mail answering our "
            f"reply, {written['auto-replies']} auto-replies, {written['errors']} errors."
        )

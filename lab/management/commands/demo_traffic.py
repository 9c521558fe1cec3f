import json
import logging
import os
import signal
import time
from collections import Counter

import httpx
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from lab.demo import iter_tickets
from tickets import webhooks

logger = logging.getLogger(__name__)

WEBHOOK_PATH = "/api/v1/webhooks/tickets"


def _default_url() -> str:
    return os.environ.get("CSAI_URL") or f"http://127.0.0.1:{os.environ.get('PORT', '8000')}"


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def _post(client: httpx.Client, *, endpoint: str, payload: dict, secret: str) -> str:
    """Send one signed ticket; returns "201", "200" or "error". Never raises."""
    body = json.dumps(payload).encode()
    headers = {
        "Content-Type": "application/json",
        webhooks.HEADER: webhooks.sign(secret=secret, body=body),
    }
    try:
        response = client.post(endpoint, content=body, headers=headers)
    except httpx.HTTPError as error:  # server not up yet, restarting, timed out, ...
        logger.warning("demo ticket not delivered", extra={"url": endpoint, "error": str(error)})
        return "error"
    if response.status_code in (200, 201):
        return str(response.status_code)
    logger.warning(
        "demo ticket refused",
        extra={"url": endpoint, "status": response.status_code, "response": response.text[:200]},
    )
    return "error"


class Command(BaseCommand):
    help = (
        "Post demo tickets to a running server through the signed webhook, at a steady rate, "
        "until --count or --duration is reached or Ctrl-C. The seed defaults to the current "
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
        **options,
    ):
        if rate <= 0:
            raise CommandError("--rate must be greater than 0.")
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
        interval = 1 / rate
        started = next_at = time.monotonic()
        tickets = iter_tickets(seed=seed, source=source)
        # SIGTERM (how `make run` stops its children) ends the run as cleanly as Ctrl-C.
        previous_handler = signal.signal(signal.SIGTERM, _interrupt)
        try:
            with httpx.Client(timeout=10) as client:
                while count is None or results.total() < count:
                    if duration is not None and next_at - started >= duration:
                        break
                    time.sleep(max(0.0, next_at - time.monotonic()))
                    results[_post(client, endpoint=endpoint, payload=next(tickets), secret=secret)] += 1
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

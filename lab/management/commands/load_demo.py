import sys

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from csai.logging import new_correlation_id, set_correlation_id
from lab.demo import generate_tickets
from tickets import services
from tickets.models import Ticket
from tickets.serializers import WebhookTicketSerializer


def _validated(payload: dict) -> services.TicketData:
    """Validate like the webhook does, so demo tickets take the same path as real ones."""
    serializer = WebhookTicketSerializer(data=payload)
    serializer.is_valid(raise_exception=True)
    return serializer.to_ticket_data()


class Command(BaseCommand):
    help = (
        "Create realistic demo tickets through the normal intake service. Idempotent: the same "
        "seed gives the same tickets, so running it again creates no duplicates."
    )

    def add_arguments(self, parser):
        parser.add_argument("--count", type=int, default=60, help="How many tickets (default 60).")
        parser.add_argument("--seed", type=int, default=7, help="Which batch of tickets (default 7).")
        parser.add_argument(
            "--if-empty", action="store_true", help="Do nothing when any ticket already exists."
        )

    def handle(self, *args, count: int, seed: int, if_empty: bool, verbosity: int, **options):
        if count < 0:
            raise CommandError("--count must not be negative.")
        if if_empty and Ticket.objects.exists():
            self.stdout.write("Tickets already exist; no demo tickets loaded.")
            return
        created = 0
        payloads = generate_tickets(count=count, seed=seed)
        # disable=None: the bar shows on a terminal only, not in piped logs.
        for payload in tqdm(
            payloads, desc="demo tickets", unit="ticket", file=sys.stderr, disable=None if verbosity else True
        ):
            # Logs and the intake task carry the ticket's correlation id, as after a webhook.
            correlation_id = new_correlation_id()
            set_correlation_id(correlation_id)
            _, was_created = services.ticket_create(data=_validated(payload), correlation_id=correlation_id)
            created += was_created
        set_correlation_id(None)
        self.stdout.write(
            f"Loaded {created} new demo tickets ({count - created} already there, seed {seed})."
        )

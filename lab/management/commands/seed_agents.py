import sys
from datetime import timedelta

from django.core.management import call_command
from django.core.management.base import BaseCommand
from tqdm import tqdm

from agents import services
from agents.models import HumanLabel
from lab import starter
from lab.journey import DemoClock, demo_clock, window_start

# The labelled tickets a team brings from its old helpdesk: older than the demo journey's
# 30 days, so no dashboard period counts them (they were resolved before CSAI existed).
IMPORT_SOURCE = "demo-import"
IMPORT_DAYS_AGO = 31


class Command(BaseCommand):
    help = (
        "Give a fresh installation working agents: a starter knowledge base, demo history as "
        f'labeled tickets (source "{IMPORT_SOURCE}", dated {IMPORT_DAYS_AGO} days ago), and a '
        "trained model for every labeled decision type. Only fills what is missing, so running "
        "it again changes nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument("--history", type=int, default=1500, help="Labeled demo tickets (default 1500).")

    def handle(self, *args, history: int, verbosity: int, **options):
        created = starter.knowledge_load()
        self.stdout.write(f"Knowledge base: {created} starter articles and templates added.")
        if not HumanLabel.objects.exists():
            clock = DemoClock(window_start(days=IMPORT_DAYS_AGO) - timedelta(hours=12))
            with (
                tqdm(
                    total=history,
                    desc="demo history",
                    unit="ticket",
                    file=sys.stderr,
                    disable=None if verbosity else True,
                ) as bar,
                demo_clock(clock),
            ):
                created = services.history_import(
                    rows=starter.history_rows(count=history), source=IMPORT_SOURCE, progress=bar.update
                )
            self.stdout.write(f"Demo history: {created} labeled tickets imported.")
        call_command("train", if_missing=True, stdout=self.stdout)

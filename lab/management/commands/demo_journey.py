import logging
import signal
import sys
import time

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from lab import journey
from lab.simulation import tasks_in_process
from tickets.models import Ticket


def _interrupt(signum, frame):
    raise KeyboardInterrupt


class Command(BaseCommand):
    help = (
        "Build a demo team some weeks into its journey: generated tickets spread over the last "
        "--days days (none today) replayed through the real pipeline and autonomy controller, "
        "answered by demo reviewers and supervised by a demo supervisor (see lab/journey.py). "
        f'The tickets have source "{journey.SOURCE}". Then load today\'s demo tickets '
        "(load_demo), which the running worker decides. Does nothing when demo history exists."
    )

    def add_arguments(self, parser):
        parser.add_argument("--tickets", type=int, default=1000, help="History tickets (default 1000).")
        parser.add_argument("--days", type=int, default=30, help="Spread over this many days (default 30).")
        parser.add_argument("--today", type=int, default=60, help="Demo tickets of today (default 60).")
        parser.add_argument("--seed", type=int, default=journey.SEED)
        parser.add_argument(
            "--check-every", type=int, default=50, help="Reviewed tickets between supervisor rounds."
        )

    def handle(self, *args, tickets: int, days: int, today: int, seed: int, verbosity: int, **options):
        if tickets < 0 or today < 0 or days < 2:
            raise CommandError("--tickets and --today must not be negative, --days at least 2.")
        if tickets:
            self._build(tickets=tickets, days=days, seed=seed, verbosity=verbosity, **options)
        if today:
            call_command("load_demo", count=today, verbosity=0, stdout=self.stdout)

    def _build(self, *, tickets: int, days: int, seed: int, verbosity: int, check_every: int, **options):
        if Ticket.objects.filter(source=journey.SOURCE).exists():
            self.stdout.write("Demo history already there; nothing to build.")
            if journey.status() is None:
                journey.status_set(state="done", done=0, total=0)
            return
        started = time.monotonic()
        step = max(1, tickets // 20)
        journey.status_set(state="building", done=0, total=tickets)

        def progress(done: int, at) -> None:
            if done % 10 == 0 or done == tickets:
                journey.status_set(state="building", done=done, total=tickets)
            if verbosity and (done % step == 0 or done == tickets):
                phases = journey.phases()
                sys.stderr.write(
                    f"csai: building demo history: {done:,} / {tickets:,} tickets "
                    f"(at {at:%d %b}; category phase {phases['category']}, "
                    f"priority phase {phases['priority']})\n"
                )
                sys.stderr.flush()

        options_ = journey.Options(tickets=tickets, days=days, seed=seed, check_every=check_every)
        with connection.cursor() as cursor:
            # Demo data: its many small commits need not wait for the disk (as simulate).
            cursor.execute("SET synchronous_commit TO off")
        # SIGTERM (how `make run` stops its children) ends the build like Ctrl-C: marked stopped.
        signal.signal(signal.SIGTERM, _interrupt)
        try:
            # The progress lines tell the story; the replay's own warnings (each promotion, each
            # alert) would bury them in JSON. The pages show every one of them.
            with tasks_in_process(full_pipeline=True):
                logging.disable(logging.WARNING)
                counts = journey.journey_build(options=options_, progress=progress)
        except BaseException:
            journey.status_set(state="failed", done=0, total=tickets)
            raise
        phases = journey.phases()
        journey.status_set(state="done", done=tickets, total=tickets, phases=phases)
        self.stdout.write(
            f"Demo history: {counts['tickets']} tickets over {days} days, {counts['answers']} decisions "
            f"answered, {counts['resolved']} resolved, {counts['alerts']} alerts; phases "
            + ", ".join(f"{name} {phase}" for name, phase in phases.items())
            + f" ({time.monotonic() - started:.0f} s)."
        )

"""Replay labelled history through the real pipeline and controller, from phase 1 on."""

import json
import signal
import sys
import time

from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError, connection
from tqdm import tqdm

from autonomy.models import ReviewItem
from lab.csvrows import (
    CSAT_COLUMNS,
    RESOLUTION_COLUMNS,
    columns,
    csat_value,
    load_rows,
    parse_where,
    resolution_value,
)
from lab.simulation import Options, Row, shuffled, simulate, tasks_in_process
from lab.throwaway import throwaway_database

DATABASE_PREFIX = "csai_simulate_"
# A person's time per ticket when nothing better is known: "about a minute a ticket" (README,
# "Queue growth"). Measured instead from this database's answered reviews when it has some.
ASSUMED_MINUTES_PER_REVIEW = 1.0
MEASURED_FROM_AT_LEAST = 30


def _fraction(value) -> str:
    return "-" if value is None else f"{value:.3f}"


class Command(BaseCommand):
    help = (
        "Replay one or more labelled CSV files, in order, as tickets through the real pipeline and "
        "autonomy controller, starting at phase 1. A simulated reviewer answers category review items "
        "from the labels (wrong at --reviewer-error-rate); the policy is promoted as soon as the next "
        "phase's criteria are met and demoted by the quality monitor. Runs in a throwaway database that "
        "is dropped afterwards; the product's own data is never touched."
    )
    requires_system_checks = []

    def add_arguments(self, parser):
        parser.add_argument("--csv", action="append", required=True, help="CSV to replay (repeat: in order).")
        parser.add_argument("--text-col", default="text")
        parser.add_argument("--label-col", required=True)
        parser.add_argument("--where", action="append", default=[], metavar="COL=VALUE")
        parser.add_argument("--drift-at", type=int, help="From this ticket on, replay --drift-csv instead.")
        parser.add_argument("--drift-csv")
        parser.add_argument("--drift-text-col", help="Default: --text-col.")
        parser.add_argument("--drift-label-col", help="Default: --label-col.")
        parser.add_argument("--drift-where", action="append", default=[], metavar="COL=VALUE")
        parser.add_argument("--reviewer-error-rate", type=float, default=0.02)
        parser.add_argument("--target-precision", type=float, default=0.95)
        parser.add_argument("--check-every", type=int, default=50, help="Tickets between monitor runs.")
        parser.add_argument("--limit", type=int, help="Replay at most this many tickets.")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument(
            "--no-shuffle",
            action="store_true",
            help="Keep each file's row order (by default each file is shuffled with --seed: labelled "
            "datasets are often sorted by label, which is no arrival order).",
        )
        parser.add_argument(
            "--full-pipeline",
            action="store_true",
            help="Run the strategy, escalation and reply agents too (about twice the time; the CSV has "
            "no truth for them). By default each run ends after the classifier step.",
        )
        parser.add_argument(
            "--resolution-col",
            help="Who resolved each ticket: ai (bot, automated) or person (human, agent); anything else is "
            f"resolved by neither. Default: the first of {', '.join(RESOLUTION_COLUMNS)} the file has.",
        )
        parser.add_argument(
            "--csat-col",
            help=f"The customer's score, 1-5. Default: {', '.join(CSAT_COLUMNS)} if the file has it.",
        )
        parser.add_argument(
            "--minutes-per-review",
            type=float,
            help="A person's minutes per ticket queued for review, for the estimated human minutes (with "
            "outcome columns). Default: measured, the median claim-to-answer time of this database's "
            f"latest review passes (at least {MEASURED_FROM_AT_LEAST}), else {ASSUMED_MINUTES_PER_REVIEW} "
            "(assumed).",
        )
        parser.add_argument("--json", action="store_true", help="JSON on stdout, the table on stderr.")

    def _rows(self, path: str, text_col: str, label_col: str, where: list[str], seed: int, keep: bool):
        """The file's rows, with their recorded outcomes when it has outcome columns."""
        found = columns(path)
        resolution_col = self.options["resolution_col"] or next(
            (c for c in RESOLUTION_COLUMNS if c in found), None
        )
        csat_col = self.options["csat_col"] or next((c for c in CSAT_COLUMNS if c in found), None)
        extra = [c for c in (resolution_col, csat_col) if c]
        rows = []
        for text, label, *values in load_rows(
            path, text_col=text_col, label_col=label_col, where=parse_where(where), extra=extra
        ):
            outcome = dict(zip(extra, values, strict=True))
            rows.append(
                Row(
                    text,
                    label,
                    resolution=resolution_value(outcome.get(resolution_col, "")),
                    csat=csat_value(outcome.get(csat_col, ""), path=path),
                )
            )
        return rows if keep else shuffled(rows, seed)

    def handle(self, *args, **options):
        if not 0 <= options["reviewer_error_rate"] < 1:
            raise CommandError("--reviewer-error-rate must be in [0, 1)")
        if not 0 < options["target_precision"] < 1:
            raise CommandError("--target-precision must be between 0 and 1")
        if (options["drift_at"] is None) != (options["drift_csv"] is None):
            raise CommandError("--drift-at and --drift-csv go together")
        keep, seed = options["no_shuffle"], options["seed"]
        self.options = options
        rows = []
        for path in options["csv"]:
            rows += self._rows(path, options["text_col"], options["label_col"], options["where"], seed, keep)
        total = options["limit"] or len(rows)
        drift_at = options["drift_at"]
        if drift_at is not None:
            drift = self._rows(
                options["drift_csv"],
                options["drift_text_col"] or options["text_col"],
                options["drift_label_col"] or options["label_col"],
                options["drift_where"],
                seed,
                keep,
            )
            rows = rows[:drift_at] + drift[: max(0, total - drift_at)]
        rows = rows[:total]
        if not rows:
            raise CommandError("nothing to replay")
        minutes, minutes_source = self._minutes_per_review(options["minutes_per_review"])
        run_options = Options(
            reviewer_error_rate=options["reviewer_error_rate"],
            check_every=options["check_every"],
            target_precision=options["target_precision"],
            seed=seed,
            minutes_per_review=minutes,
        )
        started = time.perf_counter()
        result = self._in_throwaway_database(rows, run_options, drift_at, options["full_pipeline"])
        result["seconds"] = round(time.perf_counter() - started, 1)
        if "outcomes" in result:
            result["outcomes"]["minutes_per_review_source"] = minutes_source
        out = sys.stderr if options["json"] else self.stdout
        out.write(self._table(result) + "\n")
        if options["json"]:
            self.stdout.write(json.dumps(result, indent=2))

    def _minutes_per_review(self, given: float | None) -> tuple[float, str]:
        """The figure and where it comes from: given, measured here, or assumed."""
        if given is not None:
            if not given > 0:
                raise CommandError("--minutes-per-review must be more than 0")
            return given, "given (--minutes-per-review)"
        try:  # the database the command was pointed at, before the replay's own is made
            passes = list(
                ReviewItem.objects.filter(status=ReviewItem.Status.DONE, seconds_to_decide__isnull=False)
                .order_by("-decided_at")
                .values_list("ticket_id", "decided_at", "seconds_to_decide")
                .distinct()[:5000]
            )
        except DatabaseError:
            passes = []
        if len(passes) < MEASURED_FROM_AT_LEAST:
            return (
                ASSUMED_MINUTES_PER_REVIEW,
                "assumed (no measured review times; --minutes-per-review sets it)",
            )
        seconds = sorted(p[2] for p in passes)
        median = round(seconds[len(seconds) // 2] / 60, 2)
        return median, f"measured: median of the latest {len(passes)} review passes"

    def _in_throwaway_database(
        self, rows: list[Row], run_options: Options, drift_at: int | None, full_pipeline: bool
    ) -> dict:
        """Create, migrate and drop a database of our own; Celery runs every task in process.

        A stop by SIGTERM still drops it; one left by a replay that was killed outright is
        dropped by the next replay.
        """
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
        with throwaway_database(DATABASE_PREFIX):
            with connection.cursor() as cursor:
                # A replay needs no durability: commits need not wait for the disk.
                cursor.execute("SET synchronous_commit TO off")
            bar = tqdm(total=len(rows), desc="simulating", unit="ticket", file=sys.stderr)
            with tasks_in_process(full_pipeline=full_pipeline), bar:
                return simulate(rows, options=run_options, drift_at=drift_at, progress=bar.update)

    def _table(self, result: dict) -> str:
        lines = [
            f"{'phase':>5} {'tickets':>8} {'autonomous':>10} {'precision':>9} {'human':>7} {'ECE':>6}",
        ]
        for p in result["phases"]:
            lines.append(
                f"{p['phase']:>5} {p['tickets']:>8} {p['autonomous_rate']:>10.3f} "
                f"{_fraction(p['autonomous_precision']):>9} {p['human_decisions']:>7} "
                f"{_fraction(p['ece']):>6}"
            )
        lines.append(
            f"final phase {result['final_phase']}; autonomous {result['autonomous_rate']:.3f} at true "
            f"precision {_fraction(result['autonomous_precision'])}; {result['human_decisions']} human "
            f"decisions; {len(result['alerts'])} alerts; {result['seconds']} s"
        )
        if "after_drift" in result:
            after = result["after_drift"]
            lines.append(
                f"after the drift at ticket {after['from_ticket']}: {after['applied']} applied at precision "
                f"{_fraction(after['autonomous_precision'])}"
            )
        for t in result["transitions"]:
            moved = f"{t['from']} → {t['to']} by {t['by']}"
            lines.append(f"  ticket {t['at_ticket']}: {moved}: {t['reason'][:90]}")
        if "outcomes" in result:
            lines += _outcome_table(result["outcomes"])
        return "\n".join(lines)


def _outcome_table(outcomes: dict) -> list[str]:
    lines = [
        "outcomes as the CSV recorded them, for the tickets replayed in each phase (the replay resolves",
        "nothing and asks no customer); human minutes estimated:",
        f"{'phase':>5} {'tickets':>8} {'AI-resolved':>11} {'CSAT AI':>11} {'CSAT person':>12} "
        f"{'reviews':>8} {'human min':>10}",
    ]

    def line(name, o: dict) -> str:
        return (
            f"{name:>5} {o['tickets']:>8} {_fraction(o['ai_resolution_rate']):>11} "
            f"{_mean(o['csat_ai']):>11} {_mean(o['csat_person']):>12} {o['review_passes']:>8} "
            f"{o['human_minutes']:>10.1f}"
        )

    lines += [line(o["phase"], o) for o in outcomes["phases"]]
    lines.append(line("all", outcomes["total"]))
    lines += [
        "AI-resolved: share of the tickets with a recorded resolution that the AI resolved; CSAT: mean (n).",
        f"human min = tickets queued for a person × {outcomes['minutes_per_review']:.2f} min a ticket; that "
        f"figure is {outcomes.get('minutes_per_review_source', 'given')}.",
    ]
    return lines


def _mean(summary: dict) -> str:
    return "-" if summary["mean"] is None else f"{summary['mean']:.2f} ({summary['n']})"

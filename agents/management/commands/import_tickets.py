import csv
import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from agents import decision_types, services

SUBJECT_FROM_TEXT = 80


def _label_option(value: str) -> tuple[str, str]:
    decision_type, sep, column = value.partition("=")
    if not sep or not column:
        raise ValueError(value)
    if decision_type not in decision_types.names():
        raise ValueError(value)
    return decision_type, column


class Command(BaseCommand):
    help = (
        "Import labeled history from a CSV as resolved tickets with human-confirmed labels, the "
        "training data of the local model. Importing the same file again adds nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument("path", metavar="CSV", type=Path)
        parser.add_argument("--text-col", required=True, help="Column with the ticket text.")
        parser.add_argument("--subject-col", help="Column with the subject (default: start of the text).")
        parser.add_argument("--id-col", help="Column with a unique id (default: the row number).")
        parser.add_argument(
            "--label",
            action="append",
            type=_label_option,
            required=True,
            metavar="TYPE=COLUMN",
            help=f"Decision type and the column with its label; types: {', '.join(decision_types.names())}.",
        )
        parser.add_argument("--source", help="Source name of the tickets (default: import:<file name>).")

    def handle(self, *args, path: Path, text_col, subject_col, id_col, label, source, verbosity, **options):
        if not path.is_file():
            raise CommandError(f"{path} is not a file.")
        source = source or f"import:{path.name}"[:64]
        rows = list(self._rows(path, text_col, subject_col, id_col, dict(label)))
        bar = tqdm(
            total=len(rows), desc="import", unit="row", file=sys.stderr, disable=None if verbosity else True
        )
        with bar:
            created = services.history_import(rows=rows, source=source, progress=bar.update)
        self.stdout.write(
            f"Imported {created} new tickets from {path} ({len(rows) - created} already there)."
        )

    def _rows(self, path: Path, text_col, subject_col, id_col, labels: dict[str, str]):
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            missing = {c for c in (text_col, subject_col, id_col, *labels.values()) if c} - set(
                reader.fieldnames or ()
            )
            if missing:
                raise CommandError(f"{path} has no column(s) {', '.join(sorted(missing))}.")
            for number, row in enumerate(reader, start=1):
                text = (row[text_col] or "").strip()
                if not text:
                    continue
                yield services.HistoryRow(
                    external_id=(row[id_col] if id_col else str(number))[:128],
                    subject=(row[subject_col] if subject_col else text[:SUBJECT_FROM_TEXT]).strip(),
                    body=text,
                    labels={
                        decision_type: (row[column] or "").strip() for decision_type, column in labels.items()
                    },
                )

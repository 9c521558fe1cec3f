from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from outcomes.csv_history import COLUMNS, HistoryError, read_history
from outcomes.services import surveys_import


class Command(BaseCommand):
    help = (
        f"Import satisfaction (CSAT) history from a CSV with the columns {', '.join(COLUMNS)}: a "
        "ticket by source and external id, a score 1-5, an optional comment, when it was answered "
        "(ISO 8601; without a zone, UTC) and who had resolved the ticket (ai, person or empty). "
        "Every row is checked first; nothing is stored unless all are valid. Importing the same "
        "file again adds nothing (a changed score or comment is updated)."
    )

    def add_arguments(self, parser):
        parser.add_argument("path", metavar="CSV", type=Path)

    def handle(self, *args, path: Path, **options):
        try:
            with path.open(newline="", encoding="utf-8-sig") as lines:
                answers = read_history(lines)
        except OSError as error:
            raise CommandError(f"Cannot read {path}: {error.strerror or error}") from None
        except UnicodeDecodeError:
            raise CommandError(f"{path} is not UTF-8 text.") from None
        except HistoryError as error:
            raise CommandError(
                f"{path}: {len(error.problems)} problem(s), nothing imported:\n" + "\n".join(error.problems)
            ) from None
        result = surveys_import(answers=answers)
        self.stdout.write(
            f"{len(answers)} answers: {result.created} imported, {result.updated} already there (updated)."
        )

"""Reading a CSAT history file (``manage.py csat_import``): each row checked, every problem
reported with its line, nothing stored unless the whole file is valid."""

import csv
from collections.abc import Iterable
from datetime import UTC, datetime

from django.utils.dateparse import parse_date, parse_datetime

from outcomes.services import COMMENT_MAX_CHARS, ImportedAnswer
from tickets.models import Ticket

COLUMNS = ("source", "external_id", "score", "comment", "answered_at", "resolved_by")
REQUIRED = ("source", "external_id", "score", "answered_at")
RESOLVERS = {"ai": Ticket.Resolver.AI, "person": Ticket.Resolver.PERSON, "": ""}


class HistoryError(Exception):
    """The file cannot be imported; ``problems`` lists every one, by line."""

    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = problems


def _when(value: str) -> datetime | None:
    """An ISO 8601 time; without a zone (or a bare date) it is UTC."""
    try:
        moment = parse_datetime(value)
        if moment is None and (day := parse_date(value)) is not None:
            moment = datetime(day.year, day.month, day.day)
    except ValueError:
        return None
    if moment is not None and moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment


def read_history(lines: Iterable[str]) -> list[ImportedAnswer]:
    """The answers in a CSV with a header row naming at least ``REQUIRED`` (``COLUMNS`` in all).
    Raises ``HistoryError`` with every problem found."""
    reader = csv.DictReader(lines)
    missing = [name for name in REQUIRED if name not in (reader.fieldnames or [])]
    if missing:
        raise HistoryError([f"line 1: the header lacks the column(s) {', '.join(missing)}"])
    rows = [(reader.line_num, {k: (v or "").strip() for k, v in row.items() if k}) for row in reader]
    keys = {(row["source"], row["external_id"]) for _, row in rows}
    tickets = {
        (source, external_id): pk
        for pk, source, external_id in Ticket.objects.filter(
            source__in={s for s, _ in keys}, external_id__in={e for _, e in keys}
        ).values_list("pk", "source", "external_id")
    }
    answers, problems, seen = [], [], {}
    for line, row in rows:
        found = []
        ticket_id = tickets.get((row["source"], row["external_id"]))
        if ticket_id is None:
            found.append(f"no ticket {row['source']!r} / {row['external_id']!r}")
        score = int(row["score"]) if row["score"].isdigit() else None
        if score is None or not 1 <= score <= 5:
            found.append(f"score {row['score']!r} is not a whole number from 1 to 5")
        answered_at = _when(row["answered_at"])
        if answered_at is None:
            found.append(f"answered_at {row['answered_at']!r} is not a date or time (ISO 8601)")
        resolved_by = row.get("resolved_by", "").lower()
        if resolved_by not in RESOLVERS:
            found.append(f"resolved_by {row.get('resolved_by')!r} is not ai, person or empty")
        comment = row.get("comment", "")
        if len(comment) > COMMENT_MAX_CHARS:
            found.append(f"the comment is longer than {COMMENT_MAX_CHARS} characters")
        if not found:
            key = (ticket_id, answered_at)
            if key in seen:
                found.append(f"the same ticket and answered_at as line {seen[key]}")
            seen[key] = line
        if found:
            problems.append(f"line {line}: " + "; ".join(found))
            continue
        answers.append(
            ImportedAnswer(
                line=line,
                ticket_id=ticket_id,
                score=score,
                comment=comment,
                answered_at=answered_at,
                resolved_by=RESOLVERS[resolved_by],
            )
        )
    if problems:
        raise HistoryError(problems)
    return answers

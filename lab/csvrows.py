"""Labelled rows from a CSV file, for the commands that replay or evaluate on one."""

import csv
from collections.abc import Sequence
from pathlib import Path

from django.core.management.base import CommandError


def parse_where(conditions: Sequence[str]) -> dict[str, str]:
    """["split=train", ...] -> {"split": "train", ...}."""
    where = {}
    for condition in conditions:
        column, sep, value = condition.partition("=")
        if not sep or not column:
            raise CommandError(f"bad condition {condition!r}: expected COLUMN=VALUE")
        where[column] = value
    return where


def load_rows(
    path: str, *, text_col: str, label_col: str, where: dict[str, str], extra: Sequence[str] = ()
) -> list[tuple[str, ...]]:
    """(text, label, *the ``extra`` columns) of the rows matching every condition; rows with an
    empty text are skipped."""
    if not Path(path).is_file():
        raise CommandError(f"no such file: {path}")
    with open(path, newline="", encoding="utf-8") as file:
        reader = csv.DictReader(file)
        missing = [c for c in (text_col, label_col, *extra, *where) if c not in (reader.fieldnames or [])]
        if missing:
            raise CommandError(f"{path}: no column {', '.join(missing)} (columns: {reader.fieldnames})")
        return [
            (row[text_col], row[label_col], *(row[c] or "" for c in extra))
            for row in reader
            if row[text_col].strip() and all(row[c] == v for c, v in where.items())
        ]


def columns(path: str) -> list[str]:
    """The CSV's column names (none for a missing or empty file)."""
    if not Path(path).is_file():
        return []
    with open(path, newline="", encoding="utf-8") as file:
        return next(csv.reader(file), [])


# Outcome columns a history may carry, found by name: who resolved each ticket, and the
# customer's satisfaction score.
RESOLUTION_COLUMNS = ("resolution", "resolved", "resolved_by")
CSAT_COLUMNS = ("csat",)
AI, PERSON, OTHER = "ai", "person", "other"
_RESOLVERS = {
    **dict.fromkeys(("ai", "bot", "auto", "automated", "machine"), AI),
    **dict.fromkeys(("person", "human", "agent", "staff"), PERSON),
}


def resolution_value(value: str) -> str:
    """ "ai", "person", "other" (resolved by neither: unresolved, escalated …) or "" (not known)."""
    value = value.strip().lower()
    return _RESOLVERS.get(value, OTHER) if value else ""


def csat_value(value: str, *, path: str) -> int | None:
    """A score 1–5, or None for an empty cell; anything else stops the command."""
    value = value.strip()
    if not value:
        return None
    if value not in ("1", "2", "3", "4", "5"):
        raise CommandError(f"{path}: CSAT {value!r} is not a score from 1 to 5")
    return int(value)

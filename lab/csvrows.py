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


def load_rows(path: str, *, text_col: str, label_col: str, where: dict[str, str]) -> list[tuple[str, str]]:
    """(text, label) of the rows matching every condition; rows with an empty text are skipped."""
    if not Path(path).is_file():
        raise CommandError(f"no such file: {path}")
    with open(path, newline="", encoding="utf-8") as file:
        reader = csv.DictReader(file)
        missing = [c for c in (text_col, label_col, *where) if c not in (reader.fieldnames or [])]
        if missing:
            raise CommandError(f"{path}: no column {', '.join(missing)} (columns: {reader.fieldnames})")
        return [
            (row[text_col], row[label_col])
            for row in reader
            if row[text_col].strip() and all(row[c] == v for c, v in where.items())
        ]

"""Train a TextClassifier on one labelled CSV and score it on another, one ticket at a time."""

import csv
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from agents.ml import Prediction, TextClassifier, metrics


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


def train(rows: list[tuple[str, str]], *, oos_label: str | None, seed: int) -> tuple[TextClassifier, float]:
    """The classifier trained on the rows not labelled out-of-scope, and the seconds it took."""
    rows = [(text, label) for text, label in rows if label != oos_label]
    if not rows:
        raise CommandError("the training set is empty (after the filters and without out-of-scope rows)")
    if len({label for _, label in rows}) < 2:
        raise CommandError("the training set needs at least two different labels")
    started = time.perf_counter()
    classifier = TextClassifier.fit([t for t, _ in rows], [label for _, label in rows], seed=seed)
    return classifier, time.perf_counter() - started


def predict_timed(classifier: TextClassifier, texts: Sequence[str]) -> tuple[list[Prediction], list[float]]:
    """One prediction per text, one at a time as tickets arrive, and the milliseconds each took."""
    predictions, millis = [], []
    for text in tqdm(texts, desc="predicting", unit="ticket", file=sys.stderr, mininterval=0.5):
        started = time.perf_counter()
        predictions.append(classifier.predict(text))
        millis.append((time.perf_counter() - started) * 1000)
    return predictions, millis


class Command(BaseCommand):
    help = (
        "Train the local text classifier on a labelled CSV and evaluate it on another, one text at a "
        "time: accuracy, macro F1, calibration (ECE, Brier), latency, and how out-of-scope rows "
        "(labels unseen in training, or --oos-label) are handled. Needs no database."
    )
    requires_system_checks = []

    def add_arguments(self, parser):
        parser.add_argument("--train", required=True, help="CSV file to train on.")
        parser.add_argument("--test", required=True, help="CSV file to evaluate on.")
        parser.add_argument("--text-col", default="text", help='Text column (default "text").')
        parser.add_argument("--label-col", required=True, help="Label column.")
        parser.add_argument(
            "--train-where", action="append", default=[], metavar="COL=VALUE", help="Keep matching rows."
        )
        parser.add_argument(
            "--test-where", action="append", default=[], metavar="COL=VALUE", help="Keep matching rows."
        )
        parser.add_argument(
            "--oos-label",
            default=None,
            help="Label meaning out-of-scope: not trained on, expected to go to a human.",
        )
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--json", action="store_true", help="Print one JSON object.")

    def handle(self, *args, **options):
        text_col, label_col, oos_label = options["text_col"], options["label_col"], options["oos_label"]
        train_rows = load_rows(
            options["train"],
            text_col=text_col,
            label_col=label_col,
            where=parse_where(options["train_where"]),
        )
        test_rows = load_rows(
            options["test"], text_col=text_col, label_col=label_col, where=parse_where(options["test_where"])
        )
        if not test_rows:
            raise CommandError("the test set is empty (after the filters)")
        classifier, train_seconds = train(train_rows, oos_label=oos_label, seed=options["seed"])
        truth = [label for _, label in test_rows]
        out_of_scope = set(truth) - set(classifier.labels) | ({oos_label} if oos_label else set())
        predictions, millis = predict_timed(classifier, [text for text, _ in test_rows])
        result = {
            "algorithm": TextClassifier.ALGORITHM,
            "seed": options["seed"],
            "n_train": sum(1 for _, label in train_rows if label != oos_label),
            "labels": len(classifier.labels),
            "train_seconds": round(train_seconds, 2),
            "p50_ms": round(float(np.percentile(millis, 50)), 3),
            "p95_ms": round(float(np.percentile(millis, 95)), 3),
            **metrics(predictions, truth, out_of_scope=out_of_scope),
        }
        if options["json"]:
            self.stdout.write(json.dumps(result, indent=2))
            return
        oos = result["out_of_scope"]
        self.stdout.write(
            f"{result['algorithm']}: {result['labels']} labels, {result['n_train']} training rows, "
            f"trained in {result['train_seconds']:.1f} s\n"
            f"{result['n']} test rows, {result['n_in_scope']} in scope: accuracy {result['accuracy']:.4f}, "
            f"macro F1 {result['macro_f1']:.4f}, ECE {result['ece']:.4f}, Brier {result['brier']:.4f}\n"
            f"latency per ticket: p50 {result['p50_ms']:.2f} ms, p95 {result['p95_ms']:.2f} ms\n"
            f"out of scope: {oos['n']} rows, {oos['confidence_above_0_5']} with confidence > 0.5"
        )

"""Train a TextClassifier on one labelled CSV and score it on another, one ticket at a time.

With ``--target-precision P`` it also answers the autonomy question: how much of the test set
could be applied automatically at precision P. Calibration and threshold are fitted on a
calibration split carved from the training file (never on the test labels), exactly as the
controller fits them on reviewed decisions, and then judged on the test file.
"""

import json
import sys
import time
from collections import defaultdict
from collections.abc import Sequence

import numpy as np
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from agents.ml import (
    Prediction,
    TextClassifier,
    correctness,
    expected_calibration_error,
    metrics,
    reliability_bins,
)
from autonomy.calibration import calibration_fit, coverage_at, threshold_select, thresholds_per_class
from lab.csvrows import load_rows, parse_where

# The naive rule the calibrated threshold is compared with: act when the raw confidence is >= 0.7.
FIXED_THRESHOLD = 0.7


def calibration_folds(rows: list[tuple[str, str]], *, folds: int, seed: int) -> np.ndarray:
    """The calibration split each training row belongs to (0 .. folds-1), stratified by label:
    each label's rows, shuffled with the seed, are dealt round the splits."""
    rng = np.random.default_rng(seed)
    by_label = defaultdict(list)
    for index, (_, label) in enumerate(rows):
        by_label[label].append(index)
    fold = np.zeros(len(rows), dtype=int)
    for label in sorted(by_label):
        for position, index in enumerate(rng.permutation(by_label[label])):
            fold[index] = position % folds
    return fold


def cross_fitted(
    rows: list[tuple[str, str]], *, folds: int, oos_label: str | None, seed: int
) -> list[Prediction]:
    """A prediction for every training row from a model that never saw it.

    Each of the ``folds`` calibration splits is predicted by a classifier trained on the
    other splits, so the whole training file serves as reviewed evidence and the final
    model can still train on all of it.
    """
    fold = calibration_folds(rows, folds=folds, seed=seed)
    predictions: list[Prediction | None] = [None] * len(rows)
    for k in tqdm(range(folds), desc="calibration splits", unit="split", file=sys.stderr):
        classifier, _ = train([row for row, f in zip(rows, fold, strict=True) if f != k], oos_label=oos_label,
                              seed=seed)  # fmt: skip
        held = [i for i in range(len(rows)) if fold[i] == k]
        for i, prediction in zip(held, classifier.predict_many([rows[i][0] for i in held]), strict=True):
            predictions[i] = prediction
    return predictions


def train(rows: list[tuple[str, str]], *, oos_label: str | None, seed: int) -> tuple[TextClassifier, float]:
    """The classifier trained on the rows not labelled out-of-scope, and the seconds it took.

    The out-of-scope rows are not trained on as a label; they set the classifier's
    probability floor (``TextClassifier.min_probability``).
    """
    known_out_of_scope = [text for text, label in rows if label == oos_label]
    rows = [(text, label) for text, label in rows if label != oos_label]
    if not rows:
        raise CommandError("the training set is empty (after the filters and without out-of-scope rows)")
    if len({label for _, label in rows}) < 2:
        raise CommandError("the training set needs at least two different labels")
    started = time.perf_counter()
    classifier = TextClassifier.fit(
        [t for t, _ in rows], [label for _, label in rows], out_of_scope=known_out_of_scope, seed=seed
    )
    return classifier, time.perf_counter() - started


def predict_timed(classifier: TextClassifier, texts: Sequence[str]) -> tuple[list[Prediction], list[float]]:
    """One prediction per text, one at a time as tickets arrive, and the milliseconds each took."""
    predictions, millis = [], []
    for text in tqdm(texts, desc="predicting", unit="ticket", file=sys.stderr, mininterval=0.5):
        started = time.perf_counter()
        predictions.append(classifier.predict(text))
        millis.append((time.perf_counter() - started) * 1000)
    return predictions, millis


def autonomy_report(
    *,
    held: Sequence[Prediction],
    held_truth: Sequence[str],
    predictions: Sequence[Prediction],
    truth: Sequence[str],
    out_of_scope: set[str],
    target: float,
    min_samples: int,
) -> dict:
    """Calibration and threshold from the cross-fitted training predictions, then coverage and
    precision on the test rows.

    A test row is applied automatically when the model keeps it in scope and its calibrated
    confidence is at or above the threshold; a row whose true label is out of scope counts as
    wrong when applied.
    """
    held_raw = np.array([p.confidence for p in held], dtype=float)
    held_correct = correctness(held, held_truth).astype(bool)
    calibration = calibration_fit(held_raw, held_correct)
    held_calibrated = calibration.apply(held_raw)
    # Only rows the model keeps in scope can ever be applied, so only they choose the threshold.
    eligible = np.array([not p.out_of_scope for p in held], dtype=bool)
    threshold = threshold_select(
        held_calibrated[eligible], held_correct[eligible], target=target, min_samples=min_samples
    )
    per_class = thresholds_per_class(
        held_calibrated[eligible],
        held_correct[eligible],
        [p.label for p, keep in zip(held, eligible, strict=True) if keep],
        target=target,
        min_samples=min_samples,
        fallback=threshold,
    )

    raw = np.array([p.confidence for p in predictions], dtype=float)
    calibrated = calibration.apply(raw)
    truth_in_scope = np.array([t not in out_of_scope for t in truth], dtype=bool)
    correct = correctness(predictions, truth).astype(bool) & truth_in_scope
    # Out of scope per the model: a person decides, whatever the threshold (-1 is below every one).
    model_in_scope = np.array([not p.out_of_scope for p in predictions], dtype=bool)
    candidates = np.where(model_in_scope, calibrated, -1.0)
    # As the controller does: a class's own threshold where it has one (None: never), else the global.
    limits = [per_class.get(p.label, threshold) for p in predictions]
    limits = np.array([np.inf if t is None else t for t in limits], dtype=float)
    applied = candidates >= limits
    n_applied = int(applied.sum())
    coverage = n_applied / len(raw) if len(raw) else 0.0
    auto_precision = float(correct[applied].mean()) if n_applied else None
    fixed_coverage, fixed_precision, _ = coverage_at(
        np.where(model_in_scope, raw, -1.0), correct, FIXED_THRESHOLD
    )
    return {
        "target_precision": target,
        "min_samples": min_samples,
        "threshold": threshold,
        # Predicted classes with their own threshold, and those whose evidence allows none.
        "thresholds_per_class": sum(t is not None for t in per_class.values()),
        "classes_to_people": sum(t is None for t in per_class.values()),
        # Measured on the training rows' cross-fitted predictions: ece_after is in-sample there
        # (optimistic for isotonic); ece_calibrated below is the same figure on the test rows.
        "calibration": {
            "method": calibration.method,
            "n": calibration.n,
            "ece_before": expected_calibration_error(held_raw, held_correct) if len(held) else None,
            "ece_after": expected_calibration_error(held_calibrated, held_correct) if len(held) else None,
        },
        "coverage": coverage,
        "auto_precision": auto_precision,
        "n_applied": n_applied,
        # The most any threshold could apply at precision P: every right answer, plus wrong ones up
        # to a share 1 - P of what is applied, i.e. (share of ALL test rows the model gets right,
        # out-of-scope rows counting as wrong) / P, capped at 1.
        "oracle_coverage": min(1.0, float(correct.mean()) / target),
        "fixed_0_7": {"coverage": fixed_coverage, "auto_precision": fixed_precision},
        "oos_to_human": float((~applied[~truth_in_scope]).mean()) if (~truth_in_scope).any() else None,
        "ece_calibrated": expected_calibration_error(calibrated, correct),
        "reliability": reliability_bins(calibrated, correct),
    }


def _fraction(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


class Command(BaseCommand):
    help = (
        "Train the local text classifier on a labelled CSV and evaluate it on another, one text at a "
        "time: accuracy, macro F1, calibration (ECE, Brier), latency, and how out-of-scope rows "
        "(labels unseen in training, or --oos-label) are handled. With --target-precision, also the "
        "share of test rows applied automatically at that precision, with calibration and threshold "
        "fitted on cross-fitted predictions of the training file (never the test labels). Needs no "
        "database."
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
            help="Label meaning out-of-scope: not trained on, expected to go to a human; its training "
            "rows set the classifier's probability floor.",
        )
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument(
            "--target-precision",
            type=float,
            default=None,
            metavar="P",
            help="Fit calibration and a threshold for precision P (0 < P < 1) and report coverage.",
        )
        parser.add_argument(
            "--calibration-folds",
            type=int,
            default=5,
            help="Calibration splits of the training file, each predicted by a model trained on the "
            "others (default 5).",
        )
        parser.add_argument(
            "--min-samples",
            type=int,
            default=100,
            help="Calibration rows needed at or above a threshold (default 100).",
        )
        parser.add_argument("--json", action="store_true", help="Print one JSON object.")

    def handle(self, *args, **options):
        text_col, label_col, oos_label = options["text_col"], options["label_col"], options["oos_label"]
        target, folds = options["target_precision"], options["calibration_folds"]
        if target is not None and not 0 < target < 1:
            raise CommandError("--target-precision must be between 0 and 1")
        if folds < 2:
            raise CommandError("--calibration-folds must be at least 2")
        if options["min_samples"] < 1:
            raise CommandError("--min-samples must be at least 1")
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
        held: list[Prediction] = []
        if target is not None:
            # Rows labelled --oos-label are never trained on, but they are predicted and
            # calibrated on: any answer to them is wrong, and the threshold should know.
            held = cross_fitted(train_rows, folds=folds, oos_label=oos_label, seed=options["seed"])
        held_truth = [label for _, label in train_rows]
        classifier, train_seconds = train(train_rows, oos_label=oos_label, seed=options["seed"])
        truth = [label for _, label in test_rows]
        out_of_scope = set(truth) - set(classifier.labels) | ({oos_label} if oos_label else set())
        predictions, millis = predict_timed(classifier, [text for text, _ in test_rows])
        result = {
            "algorithm": TextClassifier.ALGORITHM,
            "seed": options["seed"],
            "n_train": sum(label != oos_label for _, label in train_rows),
            "n_train_out_of_scope": sum(label == oos_label for _, label in train_rows),
            "min_probability": classifier.min_probability,
            "labels": len(classifier.labels),
            "train_seconds": round(train_seconds, 2),
            "p50_ms": round(float(np.percentile(millis, 50)), 3),
            "p95_ms": round(float(np.percentile(millis, 95)), 3),
            **metrics(predictions, truth, out_of_scope=out_of_scope),
        }
        if target is not None:
            result["n_calibration"] = len(held)
            result["calibration_folds"] = folds
            result["reliability_raw"] = result["reliability"]
            result.update(
                autonomy_report(
                    held=held,
                    held_truth=held_truth,
                    predictions=predictions,
                    truth=truth,
                    out_of_scope=out_of_scope,
                    target=target,
                    min_samples=options["min_samples"],
                )
            )
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
        if target is None:
            return
        calibration, fixed = result["calibration"], result["fixed_0_7"]
        threshold = (
            "none (everything to a human)" if result["threshold"] is None else f"{result['threshold']:.4f}"
        )
        self.stdout.write(
            f"target precision {target}: {calibration['method']} calibration on {calibration['n']} "
            f"cross-fitted training rows, calibrated threshold {threshold}\n"
            f"applied automatically: coverage {result['coverage']:.4f} at precision "
            f"{_fraction(result['auto_precision'])} (oracle coverage {result['oracle_coverage']:.4f})\n"
            f"fixed raw threshold {FIXED_THRESHOLD}: coverage {fixed['coverage']:.4f} at precision "
            f"{_fraction(fixed['auto_precision'])}\n"
            f"calibrated ECE {result['ece_calibrated']:.4f}; out-of-scope rows to a human: "
            f"{_fraction(result['oos_to_human'])}"
        )

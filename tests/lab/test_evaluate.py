"""The evaluate command: the classifier's accuracy, and with --target-precision how much of a test
set could be applied automatically, with calibration and threshold fitted on the training file."""

import csv
import io
import json
import random
from collections import Counter

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from lab.demo import generate_tickets
from lab.management.commands.evaluate import calibration_folds

OUT_OF_SCOPE = [
    "Preheat the oven to 180 degrees, whisk three eggs with the sugar and fold in the flour.",
    "qwzx plorb vrenk dlaff sktoo mmbrr",
    "Simmer the onions in butter until golden, then add the stock and a bay leaf.",
    "The striker curled a free kick into the top corner in the ninety-third minute.",
    "Knead the dough for ten minutes and let it rise overnight in the fridge.",
    "blorf snee quanty wubble frap zzt",
    "Arctic terns migrate from pole to pole every year.",
    "Shall I compare thee to a summer's day? Thou art more lovely and more temperate.",
    "Tomorrow brings light showers in the north and sunny spells along the coast.",
    "Marinate the chicken in yoghurt, garlic and cumin for at least two hours.",
]
KEYS = (
    "target_precision",
    "threshold",
    "calibration",
    "coverage",
    "auto_precision",
    "oracle_coverage",
    "fixed_0_7",
    "reliability",
    "reliability_raw",
    "ece_calibrated",
    "oos_to_human",
    "n_calibration",
)
VERBS = ["Simmer", "Whisk", "Roast", "Fold", "Knead", "Marinate", "Grill", "Stir", "Bake", "Poach"]
FOOD = [
    "the onions", "two eggs", "the flour", "a pinch of salt", "the chicken", "fresh basil", "the dough",
    "brown sugar", "the carrots", "a cup of cream", "the garlic", "the lentils",
]  # fmt: skip


def _text(ticket: dict) -> str:
    return f"{ticket['subject']}\n{ticket['body']}"


def _truth(ticket: dict, field: str = "category") -> str:
    return ticket["metadata"]["demo_truth"][field]


def _recipes(count: int, seed: int) -> list[str]:
    """Fluent English about something else entirely: the hard kind of out-of-scope text."""
    rng = random.Random(seed)
    return [
        f"{rng.choice(VERBS)} {rng.choice(FOOD)} with {rng.choice(FOOD)} for {rng.randint(2, 40)} minutes, "
        f"then {rng.choice(VERBS).lower()} {rng.choice(FOOD)} and serve."
        for _ in range(count)
    ]


def _write_csv(path, rows: list[dict]) -> str:
    with open(path, "w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return str(path)


def _evaluate(*args: str) -> dict:
    out = io.StringIO()
    call_command("evaluate", *args, "--json", stdout=out)
    return json.loads(out.getvalue())


@pytest.fixture(scope="module")
def history() -> list[dict]:
    return generate_tickets(count=500, seed=11)


@pytest.fixture(scope="module")
def held_out() -> list[dict]:
    return generate_tickets(count=200, seed=12)


@pytest.fixture(scope="module")
def priority_files(tmp_path_factory, history, held_out) -> tuple[str, str]:
    """Priority is harder to read from the text than category (about 93 % accuracy), so the
    threshold has wrong answers to keep out."""
    folder = tmp_path_factory.mktemp("priority")
    train = [{"text": _text(t), "priority": _truth(t, "priority")} for t in history[:400]]
    test = [{"text": _text(t), "priority": _truth(t, "priority")} for t in held_out]
    return _write_csv(folder / "train.csv", train), _write_csv(folder / "test.csv", test)


@pytest.fixture(scope="module")
def at_target(priority_files) -> dict:
    train, test = priority_files
    return _evaluate(
        "--train", train, "--test", test, "--label-col", "priority",
        "--target-precision", "0.9", "--min-samples", "30",
    )  # fmt: skip


# --- without --target-precision: the classifier's own figures --------------------------------


def test_the_evaluate_command_prints_json_and_counts_out_of_scope_rows(tmp_path, capsys, history, held_out):
    rows = [{"text": _text(t), "category": _truth(t), "split": "train"} for t in history[:300]]
    rows += [{"text": _text(t), "category": _truth(t), "split": "test"} for t in held_out[:40]]
    rows += [
        {"text": text, "category": "oos", "split": split}
        for text in OUT_OF_SCOPE[:2]
        for split in ("train", "test")
    ]
    rows += [
        {"text": "Arctic terns migrate from pole to pole every year.", "category": "BIRDS", "split": "test"}
    ]
    data = _write_csv(tmp_path / "tickets.csv", rows)

    call_command(
        "evaluate",
        "--train", data, "--test", data, "--label-col", "category",
        "--train-where", "split=train", "--test-where", "split=test", "--oos-label", "oos", "--json",
    )  # fmt: skip

    result = json.loads(capsys.readouterr().out)
    assert result["n"] == 43
    assert result["n_in_scope"] == 40
    assert result["labels"] == 6  # the oos rows are not trained on
    assert result["out_of_scope"]["n"] == 3
    assert result["out_of_scope"]["confidence_above_0_5"] == 0
    assert result["accuracy"] > 0.8
    for key in ("macro_f1", "ece", "brier", "p50_ms", "p95_ms", "train_seconds", "algorithm"):
        assert key in result
    for key in KEYS:  # the autonomy figures only come with --target-precision
        assert key == "reliability" or key not in result


def test_the_evaluate_command_prints_a_summary(tmp_path, capsys, history):
    rows = [{"text": _text(t), "category": _truth(t)} for t in history[:120]]
    data = _write_csv(tmp_path / "tickets.csv", rows)
    call_command("evaluate", "--train", data, "--test", data, "--label-col", "category")
    out = capsys.readouterr().out
    assert "accuracy" in out
    assert "120 test rows" in out
    assert "target precision" not in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--train", "/nonexistent.csv"], "no such file"),
        (["--label-col", "nope"], "no column nope"),
        (["--train-where", "split=nothing"], "training set is empty"),
        (["--train-where", "split"], "expected COLUMN=VALUE"),
        (["--target-precision", "1"], "between 0 and 1"),
        (["--target-precision", "0.9", "--calibration-folds", "1"], "at least 2"),
        (["--target-precision", "0.9", "--min-samples", "0"], "at least 1"),
        (["--target-precision", "0.9", "--train-where", "split=nothing"], "training set is empty"),
    ],
)
def test_the_evaluate_command_rejects_bad_input(tmp_path, history, args, message):
    rows = [{"text": _text(t), "category": _truth(t), "split": "train"} for t in history[:20]]
    data = _write_csv(tmp_path / "tickets.csv", rows)
    defaults = {"--train": data, "--test": data, "--label-col": "category"}
    defaults.update(dict(zip(args[::2], args[1::2], strict=True)))
    with pytest.raises(CommandError, match=message):
        call_command("evaluate", *[item for pair in defaults.items() for item in pair])


# --- with --target-precision: calibration, threshold, coverage -------------------------------


def test_every_label_is_spread_evenly_over_the_calibration_splits():
    rows = [(f"text {i}", "A") for i in range(50)] + [(f"text {i}", "B") for i in range(10)]
    rows += [("the only C", "C")]
    fold = calibration_folds(rows, folds=5, seed=0)
    for k in range(5):
        in_split = [label for (_, label), f in zip(rows, fold, strict=True) if f == k]
        assert Counter(in_split)["A"] == 10 and Counter(in_split)["B"] == 2
    assert (calibration_folds(rows, folds=5, seed=0) == fold).all()
    assert (calibration_folds(rows, folds=5, seed=1) != fold).any()


def test_it_applies_automatically_at_about_the_target_precision(at_target):
    for key in KEYS:
        assert key in at_target
    # Every training row is predicted by a model that never saw it, and calibrated on.
    assert at_target["n_calibration"] == at_target["n_train"] == 400
    assert at_target["calibration"]["method"] == "sigmoid"  # under 1,000 calibration rows
    assert at_target["calibration"]["ece_after"] < at_target["calibration"]["ece_before"]
    assert at_target["threshold"] is not None
    # Measured: coverage 0.92 at precision 0.97, against an accuracy of 0.93 over all rows.
    assert at_target["coverage"] > 0.5
    assert at_target["auto_precision"] >= 0.9 - 0.03
    assert at_target["auto_precision"] > at_target["accuracy"]
    assert at_target["coverage"] <= at_target["oracle_coverage"] <= 1
    assert set(at_target["fixed_0_7"]) == {"coverage", "auto_precision"}
    assert sum(row["n"] for row in at_target["reliability"]) == at_target["n"] == 200
    assert sum(row["n"] for row in at_target["reliability_raw"]) == 200
    assert at_target["oos_to_human"] is None  # no out-of-scope test rows


def test_the_test_labels_never_choose_the_threshold(tmp_path, priority_files, at_target):
    train, test = priority_files
    with open(test, newline="") as file:
        rows = list(csv.DictReader(file))
    labels = [row["priority"] for row in rows]
    random.Random(0).shuffle(labels)
    rows = [{**row, "priority": label} for row, label in zip(rows, labels, strict=True)]
    shuffled = _write_csv(tmp_path / "shuffled.csv", rows)

    result = _evaluate(
        "--train", train, "--test", shuffled, "--label-col", "priority",
        "--target-precision", "0.9", "--min-samples", "30",
    )  # fmt: skip

    assert result["accuracy"] < at_target["accuracy"] - 0.3  # the labels really are shuffled
    for key in ("threshold", "calibration", "coverage", "n_applied"):
        assert result[key] == at_target[key]
    assert result["auto_precision"] < at_target["auto_precision"]


def test_an_unreachable_target_sends_everything_to_a_human(priority_files):
    train, test = priority_files
    result = _evaluate(
        "--train", train, "--test", test, "--label-col", "priority",
        "--target-precision", "0.999", "--min-samples", "1000",  # more than the 400 calibration rows
    )  # fmt: skip
    assert result["threshold"] is None
    assert result["coverage"] == 0
    assert result["auto_precision"] is None
    assert result["n_applied"] == 0
    assert result["fixed_0_7"]["coverage"] > 0  # the naive rule would still act


def test_out_of_scope_rows_mostly_go_to_a_human(tmp_path, history, held_out):
    rows = [{"text": _text(t), "priority": _truth(t, "priority"), "split": "train"} for t in history[:400]]
    # Never trained on; a share of them is calibrated on, as answers that would be wrong.
    rows += [{"text": text, "priority": "oos", "split": "train"} for text in _recipes(40, seed=1)]
    rows += [{"text": _text(t), "priority": _truth(t, "priority"), "split": "test"} for t in held_out[:100]]
    # Out of scope in the test set: by the --oos-label, and by a label never seen in training.
    rows += [{"text": text, "priority": "oos", "split": "test"} for text in OUT_OF_SCOPE]
    rows += [{"text": text, "priority": "RECIPES", "split": "test"} for text in _recipes(20, seed=2)]
    data = _write_csv(tmp_path / "tickets.csv", rows)

    result = _evaluate(
        "--train", data, "--test", data, "--label-col", "priority",
        "--train-where", "split=train", "--test-where", "split=test", "--oos-label", "oos",
        "--target-precision", "0.9", "--min-samples", "30",
    )  # fmt: skip

    assert result["labels"] == 4
    assert result["n_calibration"] == 440  # 400 tickets and 40 recipes
    assert result["out_of_scope"]["n"] == 30
    assert result["threshold"] is not None
    # Measured 0.67 (20 of 30) with cross-fitted calibration and the one-sided bound; a
    # model with no out-of-scope handling would send none of them.
    assert result["oos_to_human"] >= 0.6
    assert result["coverage"] > 0.5  # measured 0.66 of all 130 rows, at precision 0.97


def test_the_summary_reports_the_target_precision(tmp_path, capsys, history):
    rows = [{"text": _text(t), "category": _truth(t)} for t in history[:150]]
    data = _write_csv(tmp_path / "tickets.csv", rows)
    call_command(
        "evaluate", "--train", data, "--test", data, "--label-col", "category",
        "--target-precision", "0.999", "--min-samples", "1000",
    )  # fmt: skip
    out = capsys.readouterr().out
    assert "target precision 0.999" in out
    assert "threshold none" in out
    assert "coverage 0.0000" in out
    assert "fixed raw threshold 0.7" in out

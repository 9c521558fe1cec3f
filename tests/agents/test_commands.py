"""import_tickets and train: labeled history in, a versioned model out."""

import csv
import re
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from agents.models import HumanLabel, ModelVersion
from lab import starter
from tickets.models import Ticket

HISTORY = 300


@pytest.fixture
def history_csv(tmp_path):
    path = tmp_path / "history.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "subject", "text", "cat", "prio"])
        for row in starter.history_rows(count=HISTORY):
            writer.writerow(
                [row.external_id, row.subject, row.body, row.labels["category"], row.labels["priority"]]
            )
    return path


def run(*args) -> str:
    out = StringIO()
    call_command(*args, stdout=out, verbosity=0)
    return out.getvalue()


def import_history(path) -> str:
    return run(
        "import_tickets", str(path), "--text-col", "text", "--subject-col", "subject", "--id-col", "id",
        "--label", "category=cat", "--label", "priority=prio",
    )  # fmt: skip


def test_it_imports_labeled_history_as_resolved_tickets_once(db, history_csv):
    assert f"Imported {HISTORY} new tickets" in import_history(history_csv)

    tickets = Ticket.objects.filter(source="import:history.csv")
    assert tickets.count() == HISTORY
    assert set(tickets.values_list("status", "stage").distinct()) == {("resolved", "end")}
    assert HumanLabel.objects.filter(decision_type="category", source="import").count() == HISTORY
    first = tickets.get(external_id="history-1")
    assert first.category == first.human_labels.get(decision_type="category").value

    assert "Imported 0 new tickets" in import_history(history_csv)
    assert Ticket.objects.count() == HISTORY


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--text-col", "body", "--label", "category=cat"], "no column(s) body"),
        (["--text-col", "text", "--label", "category=missing"], "no column(s) missing"),
    ],
)
def test_it_refuses_columns_the_file_does_not_have(db, history_csv, args, message):
    with pytest.raises(CommandError, match=re.escape(message)):
        run("import_tickets", str(history_csv), *args)
    assert not Ticket.objects.exists()


def test_it_refuses_an_unknown_decision_type(db, history_csv):
    with pytest.raises(CommandError):
        run("import_tickets", str(history_csv), "--text-col", "text", "--label", "mood=cat")


def test_train_registers_a_new_active_version_each_time(db, history_csv):
    import_history(history_csv)

    output = run("train", "--decision-type", "category")
    assert "category: version 1 active" in output
    first = ModelVersion.objects.get(decision_type="category")
    assert first.is_active and first.training_size < HISTORY  # a fifth is held out
    assert first.metrics["accuracy"] > 0.8
    assert set(first.labels) == set(
        HumanLabel.objects.values_list("value", flat=True).filter(decision_type="category")
    )

    run("train", "--decision-type", "category")
    assert list(
        ModelVersion.objects.filter(decision_type="category").values_list("version", "is_active")
    ) == [
        (2, True),
        (1, False),
    ]
    assert "a model is active; skipped" in run("train", "--if-missing")
    assert ModelVersion.objects.filter(decision_type="priority", is_active=True).exists()


def test_train_says_so_when_there_is_nothing_to_learn_from(db):
    with pytest.raises(CommandError, match="No human-confirmed labels"):
        run("train")

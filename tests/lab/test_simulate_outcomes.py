"""`simulate` with outcome columns: the AI resolution rate, CSAT and human minutes per phase;
without them, the report it always printed."""

import csv
import json
import subprocess

import pytest
from django.core.management.base import CommandError

from lab.csvrows import csat_value, resolution_value
from lab.management.commands.simulate import Command
from lab.simulation import Journal, Row, report
from tests.conftest import REPO
from tests.lab.test_simulate import demo_rows, simulate_command

# Leave phase 1 after 10 answered tickets, whatever the hidden answers' agreement.
EARLY = {"1": {"min_reviewed": 10, "min_accuracy": 0}}


def outcome(i: int) -> tuple[str, str]:
    """The recorded resolution and CSAT of row i: people resolved the first 10 (score 4); then
    the AI (5), a person (3) or nobody (no score) in turn."""
    if i < 10:
        return "person", "4"
    return [("ai", "5"), ("Human", "3"), ("unresolved", "")][i % 3 - 1 if i % 3 else 2]


@pytest.mark.django_db(transaction=True)
def test_with_outcome_columns_it_reports_ai_resolution_and_human_minutes_per_phase(tmp_path):
    command, env = simulate_command(tmp_path, 40)
    with open(tmp_path / "history.csv", "w", newline="") as file:  # the same rows, with outcomes
        writer = csv.writer(file)
        writer.writerow(["text", "label", "resolution", "csat"])
        writer.writerows([row.text, row.label, *outcome(i)] for i, row in enumerate(demo_rows(40)))
    command += ["--no-shuffle", "--check-every", "10", "--minutes-per-review", "2"]
    env["CSAI_PHASE_CRITERIA"] = json.dumps(EARLY)

    done = subprocess.run(  # noqa: S603
        command, cwd=REPO, env=env, capture_output=True, text=True, timeout=600, check=False
    )

    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout)
    assert [(t["from"], t["to"], t["at_ticket"]) for t in result["transitions"]] == [(1, 2, 9)]
    outcomes = result["outcomes"]
    first, second = outcomes["phases"]
    assert (first["phase"], first["tickets"], first["ai_resolution_rate"]) == (1, 10, 0.0)
    assert first["csat_person"] == {"n": 10, "mean": 4.0} and first["csat_ai"] == {"n": 0, "mean": None}
    assert (first["review_passes"], first["human_minutes"]) == (10, 20.0)
    assert (second["phase"], second["tickets"], second["resolution_recorded"]) == (2, 30, 30)
    assert second["ai_resolution_rate"] == pytest.approx(1 / 3)
    assert second["csat_ai"] == {"n": 10, "mean": 5.0} and second["csat_person"] == {"n": 10, "mean": 3.0}
    assert (second["review_passes"], second["human_minutes"]) == (30, 60.0)
    assert outcomes["total"]["human_minutes"] == 80.0
    assert outcomes["minutes_per_review_source"] == "given (--minutes-per-review)"
    table = done.stderr
    assert "outcomes as the CSV recorded them" in table and "human minutes estimated" in table
    assert "    2       30       0.333   5.00 (10)    3.00 (10)       30       60.0" in table
    assert "× 2.00 min a ticket; that figure is given (--minutes-per-review)." in table


# What `simulate` printed before it knew about outcomes, for a report without them.
BEFORE = """\
phase  tickets autonomous precision   human    ECE
    1       40      0.000         -      40      -
    3       60      0.750     0.978      15  0.031
final phase 3; autonomous 0.450 at true precision 0.978; 55 human decisions; 1 alerts; 12.5 s
  ticket 39: 1 → 2 by sim-supervisor: As proposed"""


def test_without_outcome_columns_the_report_and_its_table_are_what_they_were(db):
    rows = [Row("text", "label"), Row("text", "label", resolution="", csat=None)]
    assert not any(row.has_outcome for row in rows)
    assert "outcomes" not in report(Journal(truth={"sim-0": "label"}), drift_at=None)
    result = {
        "phases": [
            {"phase": 1, "tickets": 40, "autonomous_rate": 0.0, "autonomous_precision": None,
             "human_decisions": 40, "ece": None},
            {"phase": 3, "tickets": 60, "autonomous_rate": 0.75, "autonomous_precision": 0.9777,
             "human_decisions": 15, "ece": 0.0312},
        ],
        "final_phase": 3, "autonomous_rate": 0.45, "autonomous_precision": 0.9777, "human_decisions": 55,
        "alerts": [{}], "seconds": 12.5,
        "transitions": [
            {"at_ticket": 39, "from": 1, "to": 2, "by": "sim-supervisor", "reason": "As proposed"}
        ],
    }  # fmt: skip
    assert Command()._table(result) == BEFORE


def test_recorded_outcomes_are_read_loosely_but_a_bad_score_stops_the_command():
    assert [resolution_value(v) for v in ["AI", " bot ", "Human", "agent", "escalated", ""]] == [
        "ai",
        "ai",
        "person",
        "person",
        "other",
        "",
    ]
    assert (csat_value(" 4 ", path="h.csv"), csat_value("", path="h.csv")) == (4, None)
    with pytest.raises(CommandError, match="h.csv: CSAT '7' is not a score from 1 to 5"):
        csat_value("7", path="h.csv")

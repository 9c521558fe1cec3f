"""Each benchmark in bench/ runs to its end in its tiny ``--smoke`` mode and writes a sane
result, in a database of its own that it drops: what `make bench-*` runs, only smaller.

The figures of a smoke run mean nothing; only that there are some is checked.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection

REPO = Path(__file__).resolve().parents[2]


def bench_databases() -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute(r"SELECT datname FROM pg_database WHERE datname LIKE 'bench\_%'")
        return {name for (name,) in cursor.fetchall()}


def run_bench(script: str, out: Path) -> dict:
    """Run ``bench/<script>`` as `make` does, in its smoke mode, writing to ``out``."""
    before = bench_databases()
    done = subprocess.run(  # noqa: S603
        [sys.executable, f"bench/{script}", "--smoke", "--out", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert bench_databases() <= before  # its own database is dropped
    return json.loads(out.read_text())


@pytest.mark.django_db
def test_the_intake_bench_drives_the_webhook_and_the_floor(tmp_path):
    result = run_bench("intake.py", tmp_path / "intake.json")

    assert result["benchmark"] == "intake"
    for target, status in (("webhook", 201), ("floor_insert", 201), ("webhook_duplicate", 200)):
        figures = result[target]
        assert figures["requests"] > 0 and figures["errors"] == 0, figures
        assert figures["status_counts"] == {str(status): figures["requests"]}
        assert 0 < figures["p50_ms"] <= figures["p99_ms"] <= figures["max_ms"]
        assert figures["rps"] > 0
    assert result["written"]["tickets"] >= result["webhook"]["requests"]
    assert result["written"]["floor_rows"] >= result["floor_insert"]["requests"]
    assert all(ratio > 0 for ratio in result["ratio"].values())


@pytest.mark.django_db
@pytest.mark.worker
def test_the_pipeline_bench_drains_its_tickets_through_every_step(tmp_path):
    result = run_bench("pipeline.py", tmp_path / "pipeline.json")

    assert result["benchmark"] == "pipeline"
    assert result["tickets"] == 5
    assert result["seconds"] > 0 and result["tickets_per_second"] > 0
    assert result["task_ms"]["ticket_intake"]["n"] == 5
    assert result["tasks_per_ticket"] > 1  # intake, then the agents' steps
    assert {"category", "priority"} <= set(result["models"]) <= set(result["agent_ms"])
    for figures in [*result["task_ms"].values(), *result["agent_ms"].values()]:
        assert figures["n"] > 0 and 0 <= figures["p50"] <= figures["max"]


@pytest.mark.django_db
def test_the_console_bench_times_every_page(tmp_path):
    result = run_bench("console.py", tmp_path / "console.json")

    assert result["bench"] == "console"
    assert result["data"]["tickets"] == 300
    pages = {"queue_page_1", "queue_page_40", "queue_filtered", "queue_counts", "review_page"}
    assert set(result["server_time"]) == pages
    for figures in result["server_time"].values():
        assert figures["n"] == 3 and 0 < figures["p50_ms"] <= figures["max_ms"]
    assert result["queue_query_plan_ms"]["execution"] > 0

"""Each benchmark in bench/ runs to its end in its tiny ``--smoke`` mode and writes a sane
result, in a database of its own that it drops: what `make bench-*` runs, only smaller.

The figures of a smoke run mean nothing; only that there are some is checked. The fault
bench is the exception: what it counts as lost, stranded or done twice must be zero even in
its short run (its timings are not checked), and it runs in a var folder of its own.
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


def run_bench(script: str, out: Path, timeout: float = 300) -> dict:
    """Run ``bench/<script>`` as `make` does, in its smoke mode, writing to ``out``."""
    before = bench_databases()
    done = subprocess.run(  # noqa: S603
        [sys.executable, f"bench/{script}", "--smoke", "--out", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
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
    assert set(result["server_time"]) == pages | {"dashboard_90d", "dashboard_30d"}
    for figures in result["server_time"].values():
        assert figures["n"] == 3 and 0 < figures["p50_ms"] <= figures["p95_ms"] <= figures["max_ms"]
    assert result["queue_query_plan_ms"]["execution"] > 0
    dashboard = result["dashboard"]
    assert dashboard["outcome_tickets"] == dashboard["rows"]["tickets"] == 2000
    assert dashboard["rows"]["surveys"] > 0 and dashboard["rows"]["review_items"] > 0
    assert dashboard["queries_per_page"] > 0 and dashboard["outcomes_query_90d"]["p50_ms"] > 0


@pytest.mark.django_db
@pytest.mark.worker
def test_the_fault_bench_loses_nothing_and_recovers_from_every_fault(tmp_path):
    # The whole product (launcher, embedded servers, worker, beat) in a folder of its own,
    # one fault of each kind under steady traffic: about three minutes.
    result = run_bench("faults.py", tmp_path / "faults.json", timeout=600)

    assert result["benchmark"] == "faults"
    assert [f["fault"] for f in result["faults"]] == ["worker", "postgres", "redis", "web", "llm_storm"]
    assert all(f["recovered"] for f in result["faults"]), result["faults"]
    restarted = {f["fault"]: f.get("launcher_restarts") for f in result["faults"]}
    assert restarted["worker"] == {"worker": 1}
    assert restarted["postgres"] == {"postgres": 1} and restarted["redis"] == {"redis": 1}
    figures = result["reconciliation"]
    assert figures["tickets_accepted"] > 0 and figures["accepted_not_stored"] == 0
    assert figures["stored_more_than_once"] == 0
    assert figures["tickets_fully_decided"] == figures["tickets_stored"]
    assert figures["decisions_without_disposition"] == 0
    assert figures["applied_twice"] == 0 and figures["decided_twice"] == 0
    assert figures["runs_stranded"] == 0
    assert figures["dispositions_by_kind"].get("auto_applied", 0) > 0  # the apply path ran too


@pytest.mark.django_db
@pytest.mark.worker
def test_the_outbound_bench_delivers_every_event_to_its_receiver(tmp_path):
    result = run_bench("outbound.py", tmp_path / "outbound.json")

    assert result["benchmark"] == "outbound"
    for phase in ("backlog", "steady"):
        figures = result[phase]
        assert figures["deliveries"] > 0 and figures["delivered_per_second"] > 0
        assert 0 < figures["lag_ms"]["p50"] <= figures["lag_ms"]["p95"] <= figures["lag_ms"]["max"]
    assert result["receiver"]["requests"] >= result["backlog"]["deliveries"] + result["steady"]["deliveries"]
    assert result["receiver"]["bad_signatures"] == 0

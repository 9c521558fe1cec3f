"""The phase journey: from full human oversight to autonomy on measured evidence, and back."""

import json
import os
import signal
import subprocess
import sys
from urllib.parse import quote

import pytest
from django.conf import settings
from django.db import connection

from autonomy.models import AutomationPolicy, PhaseTransition
from lab.demo import generate_tickets
from lab.simulation import Options, Row, simulate, tasks_in_process
from tests.conftest import REPO

# Lower bars than the defaults, so a few hundred demo tickets are enough for the journey.
QUICK = {
    "1": {"window": 60, "min_reviewed": 40},
    "2": {"window": 60, "min_reviewed": 40},
    "3": {"window": 60, "min_decisions": 40, "min_reviewed": 30},
}


def demo_rows(count: int) -> list[Row]:
    return [
        Row(f"{t['subject']}\n{t['body']}", t["metadata"]["demo_truth"]["category"])
        for t in generate_tickets(count=count, seed=11)
    ]


# The journey is deterministic given its rows' ids (held-out tickets and review samples are
# hashes of ids): sequences start afresh, so the tests run before it cannot change it.
@pytest.mark.django_db(transaction=True, reset_sequences=True)
def test_a_replay_climbs_from_full_oversight_to_autonomy_on_the_evidence():
    with tasks_in_process():
        options = Options(check_every=20, criteria=QUICK, target_precision=0.9, min_samples=20)
        result = simulate(demo_rows(300), options=options)

    phases = [p["phase"] for p in result["phases"]]
    assert phases[0] == 1 and result["final_phase"] >= 3
    # Every promotion was one phase up, by the (simulated) supervisor, on met criteria.
    promotions = PhaseTransition.objects.filter(direction="promote").order_by("created_at")
    assert [(t.from_phase, t.to_phase) for t in promotions][:2] == [(1, 2), (2, 3)]
    assert all(t.actor.username == "sim-supervisor" for t in promotions)
    # Phase 1 and 2: people decided everything; later the machine applied most, and rightly.
    first = result["phases"][0]
    assert first["autonomous_rate"] == 0 and first["human_decisions"] == first["tickets"]
    autonomous = result["phases"][-1]
    assert autonomous["phase"] >= 3 and autonomous["autonomous_rate"] > 0.5, json.dumps(result)
    assert result["autonomous_precision"] >= 0.9
    assert result["retrains"] and result["retrains"][0]["status"].startswith("promoted")


def replay_databases() -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT datname FROM pg_database WHERE datname LIKE 'csai_simulate_%'")
        return {name for (name,) in cursor.fetchall()}


def simulate_command(tmp_path, tickets: int) -> tuple[list[str], dict]:
    """The command line and environment an operator runs, on this test's database server."""
    path = tmp_path / "history.csv"
    rows = demo_rows(tickets)
    path.write_text("text,label\n" + "".join(f'"{r.text.replace(chr(34), "")}",{r.label}\n' for r in rows))
    db = connection.settings_dict
    env = {
        **os.environ,
        "DATABASE_URL": f"postgresql://{db['USER']}@{quote(db['HOST'], safe='')}/{db['NAME']}",
        "REDIS_URL": settings.REDIS_URL,
        "SECRET_KEY": settings.SECRET_KEY,
        "CSAI_WEBHOOK_SECRET": "x",
    }
    command = [sys.executable, "manage.py", "simulate", "--csv", str(path), "--label-col", "label", "--json",
               "--check-every", "30"]  # fmt: skip
    return command, env


@pytest.mark.django_db(transaction=True)
def test_the_command_replays_in_a_database_of_its_own_and_prints_json(tmp_path):
    command, env = simulate_command(tmp_path, 60)
    abandoned = "csai_simulate_999999999"  # left by a replay killed outright; no such process
    with connection.cursor() as cursor:
        cursor.execute(f"DROP DATABASE IF EXISTS {abandoned}")
        cursor.execute(f"CREATE DATABASE {abandoned}")
    before = replay_databases()
    # A process of its own, as an operator runs it: it creates and drops its own database.
    done = subprocess.run(  # noqa: S603
        command, cwd=REPO, env=env, capture_output=True, text=True, timeout=600, check=False
    )

    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout)
    assert result["tickets"] == 60 and result["final_phase"] == 1
    assert set(result) >= {"final_phase", "autonomous_rate", "autonomous_precision", "human_decisions",
                           "phases", "alerts", "transitions"}  # fmt: skip
    assert "final phase 1" in done.stderr
    assert "outcomes" not in result and "outcomes as" not in done.stderr  # the CSV has none
    # The database it was pointed at saw none of it; no replay database is left behind.
    assert not AutomationPolicy.objects.exists()
    assert replay_databases() <= before - {abandoned}  # its own dropped too, and any other dead one


@pytest.mark.django_db(transaction=True)
def test_a_replay_stopped_with_sigterm_drops_its_database(tmp_path):
    command, env = simulate_command(tmp_path, 2000)
    before = replay_databases()
    process = subprocess.Popen(  # noqa: S603
        command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    try:
        # tqdm's progress comes once the database is made and the replay has begun.
        assert any("simulating" in line for line in process.stderr)
        assert len(replay_databases() - before) == 1
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 128 + signal.SIGTERM
    finally:
        process.kill()
    assert replay_databases() <= before

"""`manage.py csat_import`: CSAT history from a CSV, every row checked, idempotent."""

from datetime import UTC, datetime

import pytest
from django.core.management import CommandError, call_command

from events.models import Event
from outcomes.models import Survey
from tests.factories import TicketFactory

HEADER = "source,external_id,score,comment,answered_at,resolved_by\n"


@pytest.fixture
def tickets(db):
    return [TicketFactory(source="zendesk", external_id=f"ZD-{n}") for n in (1, 2)]


def run(tmp_path, text: str, name: str = "csat.csv") -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    out = []

    class Out:
        def write(self, line, *args, **kwargs):
            out.append(line)

        def flush(self):
            pass

    call_command("csat_import", str(path), stdout=Out())
    return "".join(out)


def test_it_imports_the_answers_as_imported_surveys(tmp_path, tickets):
    said = run(
        tmp_path,
        HEADER
        + 'zendesk,ZD-1,5,"Fast, thanks",2026-10-01T09:30:00+02:00,ai\n'
        + "zendesk,ZD-2,2,,2026-10-02,person\n",
    )

    assert "2 imported" in said
    one, two = (tickets[0].surveys.get(), tickets[1].surveys.get())
    assert (one.score, one.comment, one.resolved_by, one.source) == (5, "Fast, thanks", "ai", "import")
    assert one.answered_at == datetime(2026, 10, 1, 7, 30, tzinfo=UTC)
    assert (two.score, two.answered_at) == (2, datetime(2026, 10, 2, tzinfo=UTC))  # no zone: UTC
    assert not Event.objects.filter(type="ticket.csat").exists()  # history, not news


def test_importing_the_same_file_again_adds_nothing_and_takes_corrections(tmp_path, tickets):
    rows = HEADER + "zendesk,ZD-1,4,ok,2026-10-01T09:30:00Z,ai\n"
    run(tmp_path, rows)

    said = run(tmp_path, rows.replace(",4,ok,", ",3,ok,"))

    assert "0 imported, 1 already there" in said
    assert list(Survey.objects.values_list("score", flat=True)) == [3]


def test_an_invalid_file_imports_nothing_and_names_every_problem_by_line(tmp_path, tickets):
    rows = (
        HEADER
        + "zendesk,ZD-1,5,,2026-10-01,ai\n"  # fine
        + "zendesk,ZD-404,5,,2026-10-01,ai\n"
        + "zendesk,ZD-2,7,,yesterday,robot\n"
        + "zendesk,ZD-1,4,,2026-10-01,ai\n"  # the same answer as line 2
    )

    with pytest.raises(CommandError) as refused:
        run(tmp_path, rows)

    message = str(refused.value)
    assert "3 problem(s), nothing imported" in message
    assert "line 3: no ticket 'zendesk' / 'ZD-404'" in message
    assert "line 4: score '7' is not a whole number from 1 to 5" in message
    assert "answered_at 'yesterday' is not a date or time" in message
    assert "resolved_by 'robot' is not ai, person or empty" in message
    assert "line 5: the same ticket and answered_at as line 2" in message
    assert not Survey.objects.exists()


def test_a_file_without_the_required_columns_is_refused(tmp_path, tickets):
    with pytest.raises(CommandError, match="the header lacks the column.s. score, answered_at"):
        run(tmp_path, "source,external_id,rating\nzendesk,ZD-1,5\n")


def test_a_missing_file_is_a_clear_error(tmp_path, db):
    with pytest.raises(CommandError, match="Cannot read"):
        call_command("csat_import", str(tmp_path / "nope.csv"))

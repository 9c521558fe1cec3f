"""The outcome sums of each day, kept in ``DayFigures`` so the dashboard reads a row per day
instead of recomputing every ticket of its period.

- **The page** (``day_sums``) reads the stored days, computes today and yesterday from the
  rows every time (where most changes happen, never stale), and computes any day it does
  not find (a new install, a new time zone or estimate) and stores it — so correctness never
  waits for the refresh. Its number of queries is fixed.
- **The refresh** (``day_figures_refresh``, a beat task every minute) computes again exactly
  the days whose inputs changed since it last looked: a day's tickets by ``updated_at``
  (every write of a ticket sets it), their review items by ``decided_at``, their messages by
  ``created_at`` and ``delivered_at``, their dispositions by ``created_at``, the day's
  surveys by ``sent_at`` and ``answered_at``.

Why nothing is missed: the refresh looks at changes stamped from ``seen_until`` on, and
moves ``seen_until`` only to the start of the oldest transaction still open (less a margin
for a time taken just before its transaction began): a change it could not see yet is
stamped after that, so the next refresh sees it once committed. The page only inserts days
that are not stored (``ON CONFLICT DO NOTHING``) and the refresh overwrites them, so a day
the page computed before a change committed is the refresh's to correct. Writes that stamp
the past (an imported CSAT history) move ``seen_until`` back (``day_figures_rescan``).
"""

import json
from datetime import date, datetime, timedelta

from django.db import connection, transaction
from django.utils import timezone

from agents.models import AgentDecision
from autonomy.models import Disposition, ReviewItem
from outcomes import report
from outcomes.effort import EffortRates
from outcomes.models import DayFigures, DayFiguresMark, Survey
from tickets.models import Message, Ticket

# The longest period the dashboard shows (review.forms): older days are neither read nor kept.
HORIZON_DAYS = 365
# Today and yesterday are always computed from the rows.
LIVE_DAYS = 2
# A change may be stamped (``timezone.now()``) a little before its transaction begins.
MARGIN = timedelta(minutes=5)


def basis() -> str:
    """What the sums depend on besides the rows: the time zone that cuts days, the estimates."""
    rates = EffortRates.from_settings()
    return f"{timezone.get_current_timezone_name()} {rates.review_cap:g}/{rates.reply:g}/{rates.escalation:g}"


def day_sums(day_list: list[date], *, live: bool = False) -> list[dict]:
    """The sums of each day of ``day_list`` (consecutive), stored days read, recent and missing
    days computed (four queries); ``live``: every day computed from the rows."""
    first, last = day_list[0], day_list[-1]
    if live:
        computed = report.sums_by_day(first=first, last=last)
        return [computed[day] for day in day_list]
    key, live_from = basis(), timezone.localdate() - timedelta(days=LIVE_DAYS - 1)
    stored = {
        day: {name: float(value) for name, value in sums.items()}
        for day, sums in DayFigures.objects.filter(basis=key, day__gte=first, day__lt=live_from).values_list(
            "day", "sums"
        )
    }
    missing = [day for day in day_list if day < live_from and day not in stored]
    computed = report.sums_by_day(first=max(first, min(missing, default=live_from)), last=last)
    _store(key, {day: computed[day] for day in missing}, replace=False)
    return [stored[day] if day in stored else computed[day] for day in day_list]


def _store(key: str, days: dict[date, dict], *, replace: bool) -> None:
    """One statement however many days (none too): insert, or overwrite when ``replace``."""
    conflict = "UPDATE SET sums = EXCLUDED.sums, computed_at = EXCLUDED.computed_at" if replace else "NOTHING"
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {DayFigures._meta.db_table} (basis, day, sums, computed_at) "  # noqa: S608
            "SELECT %s, d, s, clock_timestamp() FROM unnest(%s::date[], %s::jsonb[]) AS u(d, s) "
            f"ON CONFLICT (basis, day) DO {conflict}",
            [key, list(days), [json.dumps(sums) for sums in days.values()]],
        )


def day_figures_refresh() -> str:
    """Compute again the stored days whose inputs changed since the last refresh (every day
    of the horizon the first time). Two refreshes at once: the second returns "busy"."""
    key = basis()
    DayFiguresMark.objects.get_or_create(basis=key)
    with transaction.atomic():
        mark = DayFiguresMark.objects.select_for_update(skip_locked=True).filter(basis=key).first()
        if mark is None:
            return "busy"
        seen_until = _safe_mark()
        today = timezone.localdate()
        oldest = today - timedelta(days=HORIZON_DAYS - 1)
        if mark.seen_until is None:
            days = [oldest + timedelta(days=i) for i in range(HORIZON_DAYS)]
        else:
            days = sorted(day for day in changed_days(since=mark.seen_until) if oldest <= day <= today)
        if days:
            computed = report.sums_by_day(first=days[0], last=days[-1])
            _store(key, {day: computed[day] for day in days}, replace=True)
        mark.seen_until = seen_until
        mark.save(update_fields=["seen_until"])
        DayFigures.objects.exclude(basis=key).delete()
        DayFiguresMark.objects.exclude(basis=key).delete()
    return f"days:{len(days)}"


def day_figures_rescan(*, since: datetime) -> None:
    """Changes were stamped as of ``since`` (history written today about the past): the next
    refresh looks from there. Waits for a refresh under way, which holds the mark."""
    DayFiguresMark.objects.filter(seen_until__gt=since).update(seen_until=since)


def _safe_mark() -> datetime:
    """The start of the oldest other transaction still open (or now), less ``MARGIN``."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT LEAST(clock_timestamp(), MIN(xact_start)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return cursor.fetchone()[0] - MARGIN


_CHANGED = """
SELECT (tk.created_at AT TIME ZONE %(tz)s)::date FROM {ticket} tk WHERE tk.updated_at >= %(since)s
UNION
SELECT (tk.created_at AT TIME ZONE %(tz)s)::date
FROM {item} r JOIN {ticket} tk ON tk.id = r.ticket_id WHERE r.decided_at >= %(since)s
UNION
SELECT (tk.created_at AT TIME ZONE %(tz)s)::date
FROM {message} m JOIN {ticket} tk ON tk.id = m.ticket_id
WHERE m.created_at >= %(since)s OR m.delivered_at >= %(since)s
UNION
SELECT (tk.created_at AT TIME ZONE %(tz)s)::date
FROM {disposition} p JOIN {decision} d ON d.id = p.decision_id JOIN {ticket} tk ON tk.id = d.ticket_id
WHERE p.created_at >= %(since)s
UNION
SELECT (s.sent_at AT TIME ZONE %(tz)s)::date FROM {survey} s
WHERE s.sent_at >= %(since)s OR s.answered_at >= %(since)s
"""


def changed_days(*, since: datetime) -> set[date]:
    """The local days whose sums may have changed by a write stamped at or after ``since``."""
    sql = _CHANGED.format(
        ticket=Ticket._meta.db_table,
        item=ReviewItem._meta.db_table,
        message=Message._meta.db_table,
        disposition=Disposition._meta.db_table,
        decision=AgentDecision._meta.db_table,
        survey=Survey._meta.db_table,
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, {"since": since, "tz": timezone.get_current_timezone_name()})
        return {row[0] for row in cursor.fetchall()}

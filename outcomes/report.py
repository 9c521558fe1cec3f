"""Outcomes by day, for the supervisor dashboard: resolution, reopens, human effort and first
response (by the day a ticket was created), and CSAT (by the day the survey was sent).

Two queries whatever the period: the database returns sums and counts per day, and every
rate, average and total is made from those sums (sums add up; averages of days would not).
"""

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.db.models import Count, F, Q, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from agents.services import HISTORY_CUSTOMER
from outcomes.effort import run_effort_query
from outcomes.models import Survey
from outcomes.stats import ScoreSummary, mean_difference
from tickets.models import Ticket

AI, PERSON = Ticket.Resolver.AI.value, Ticket.Resolver.PERSON.value

TICKET_SUMS = (
    "tickets",
    "resolved",
    "ai_resolved",
    "person_resolved",
    "ever_resolved",
    "reopened",
    "human_minutes",
    "review_minutes",
    "replies_outside_review",
    "escalations",
    "ai_only",
    "ai_and_person",
    "person_only",
    "untouched",
    "frt_ai_seconds",
    "frt_ai_n",
    "frt_person_seconds",
    "frt_person_n",
)

_BY_DAY = """
SELECT (created_at AT TIME ZONE %(tz)s)::date AS day,
       COUNT(*) AS tickets,
       COUNT(*) FILTER (WHERE resolved_at IS NOT NULL) AS resolved,
       COUNT(*) FILTER (WHERE resolved_at IS NOT NULL AND resolved_by = 'ai') AS ai_resolved,
       COUNT(*) FILTER (WHERE resolved_at IS NOT NULL AND resolved_by = 'person') AS person_resolved,
       COUNT(*) FILTER (WHERE resolved_at IS NOT NULL OR reopened_count > 0) AS ever_resolved,
       COUNT(*) FILTER (WHERE reopened_count > 0) AS reopened,
       COALESCE(SUM(minutes), 0) AS human_minutes,
       COALESCE(SUM(review_minutes), 0) AS review_minutes,
       COALESCE(SUM(replies_outside), 0) AS replies_outside_review,
       COUNT(*) FILTER (WHERE escalated) AS escalations,
       COUNT(*) FILTER (WHERE attribution = 'ai_only') AS ai_only,
       COUNT(*) FILTER (WHERE attribution = 'ai_and_person') AS ai_and_person,
       COUNT(*) FILTER (WHERE attribution = 'person_only') AS person_only,
       COUNT(*) FILTER (WHERE attribution = 'untouched') AS untouched,
       COALESCE(SUM(EXTRACT(EPOCH FROM first_response_at - created_at))
           FILTER (WHERE first_response_at IS NOT NULL AND first_sender = 'ai'), 0) AS frt_ai_seconds,
       COUNT(*) FILTER (WHERE first_response_at IS NOT NULL AND first_sender = 'ai') AS frt_ai_n,
       COALESCE(SUM(EXTRACT(EPOCH FROM first_response_at - created_at))
           FILTER (WHERE first_response_at IS NOT NULL AND first_sender = 'person'), 0)
           AS frt_person_seconds,
       COUNT(*) FILTER (WHERE first_response_at IS NOT NULL AND first_sender = 'person')
           AS frt_person_n
FROM per_ticket
GROUP BY 1
"""


def ticket_sums_by_day(*, start: datetime, end: datetime) -> dict[date, dict]:
    """Per day of creation, the sums ``TICKET_SUMS`` of the team's tickets (one query)."""
    rows = run_effort_query(_BY_DAY, start=start, end=end, extra={"tz": timezone.get_current_timezone_name()})
    return {row[0]: dict(zip(TICKET_SUMS, map(float, row[1:]), strict=True)) for row in rows}


def _survey_aggregates() -> dict:
    out = {}
    for who in (AI, PERSON):
        mine = Q(resolved_by=who)
        answered = mine & Q(score__isnull=False)
        out |= {
            f"sent_{who}": Count("id", filter=mine),
            f"answered_{who}": Count("id", filter=answered),
            f"score_{who}": Sum("score", filter=answered),
            f"squares_{who}": Sum(F("score") * F("score"), filter=answered),
        }
    return out


SURVEY_SUMS = tuple(_survey_aggregates())


def survey_sums_by_day(*, start: datetime, end: datetime) -> dict[date, dict]:
    """Per day a survey was sent, its counts and score sums by who resolved (one query)."""
    rows = (
        Survey.objects.filter(sent_at__gte=start, sent_at__lt=end)
        .exclude(ticket__customer__external_id=HISTORY_CUSTOMER)
        .annotate(day=TruncDate("sent_at"))
        .values("day")
        .annotate(**_survey_aggregates())
        .order_by("day")
    )
    return {row.pop("day"): {key: float(row[key] or 0) for key in SURVEY_SUMS} for row in rows}


def empty_sums() -> dict:
    return dict.fromkeys((*TICKET_SUMS, *SURVEY_SUMS), 0.0)


def day_bounds(first: date, last: date) -> tuple[datetime, datetime]:
    """From the start of local day ``first`` to the end of local day ``last``."""
    start = timezone.make_aware(datetime.combine(first, time.min))
    return start, timezone.make_aware(datetime.combine(last + timedelta(days=1), time.min))


def sums_by_day(*, first: date, last: date) -> dict[date, dict]:
    """Every day from ``first`` to ``last`` with all its sums, from the rows (two queries)."""
    start, end = day_bounds(first, last)
    tickets = ticket_sums_by_day(start=start, end=end)
    surveys = survey_sums_by_day(start=start, end=end)
    days = (first + timedelta(days=i) for i in range((last - first).days + 1))
    return {day: {**empty_sums(), **tickets.get(day, {}), **surveys.get(day, {})} for day in days}


def add_sums(rows) -> dict:
    total = empty_sums()
    for row in rows:
        for key in total:
            total[key] += row.get(key, 0.0)
    return total


def _share(part: float, whole: float) -> float | None:
    return part / whole if whole else None


def _hours(seconds: float, n: float) -> float | None:
    return seconds / n / 3600 if n else None


def _scores(sums: dict, who: str) -> ScoreSummary:
    return ScoreSummary.from_sums(
        n=int(sums[f"answered_{who}"]), total=sums[f"score_{who}"], squares=sums[f"squares_{who}"]
    )


@dataclass(frozen=True)
class Verdict:
    """Is the AI's CSAT different from people's? In words a CS lead reads at a glance."""

    key: str  # worse | better | same | unknown
    text: str


def csat_verdict(difference: dict) -> Verdict:
    if difference["value"] is None:
        return Verdict("unknown", "too few answers to compare yet")
    if difference["high"] < 0:
        return Verdict("worse", "AI-resolved tickets are rated lower (95 % confidence)")
    if difference["low"] > 0:
        return Verdict("better", "AI-resolved tickets are rated higher (95 % confidence)")
    return Verdict("same", "no significant difference")


def outcome_figures(sums: dict) -> dict:
    """The figures of one day, or of a period, from its sums."""
    ai, person = _scores(sums, AI), _scores(sums, PERSON)
    difference = mean_difference(ai, person).to_dict()
    tickets = sums["tickets"]
    minutes = sums["human_minutes"] / tickets if tickets else None
    return {
        "resolved": int(sums["resolved"]),
        "ai_resolved": int(sums["ai_resolved"]),
        "person_resolved": int(sums["person_resolved"]),
        "ai_resolution_rate": _share(sums["ai_resolved"], sums["resolved"]),
        "reopened": int(sums["reopened"]),
        "ever_resolved": int(sums["ever_resolved"]),
        "reopen_rate": _share(sums["reopened"], sums["ever_resolved"]),
        "csat": {
            "ai": {
                **ai.to_dict(),
                "sent": int(sums[f"sent_{AI}"]),
                "response_rate": _share(ai.n, sums[f"sent_{AI}"]),
            },
            "person": {
                **person.to_dict(),
                "sent": int(sums[f"sent_{PERSON}"]),
                "response_rate": _share(person.n, sums[f"sent_{PERSON}"]),
            },
            "difference": difference,  # AI − person
            "verdict": csat_verdict(difference).key,
        },
        "human_minutes": sums["human_minutes"],
        "human_minutes_per_ticket": minutes,
        "human_hours_per_100_tickets": minutes * 100 / 60 if minutes is not None else None,
        "effort": {
            "review_minutes": sums["review_minutes"],
            "replies_outside_review": int(sums["replies_outside_review"]),
            "escalations": int(sums["escalations"]),
        },
        "handled_by": {
            "ai_only": int(sums["ai_only"]),
            "ai_and_person": int(sums["ai_and_person"]),
            "person_only": int(sums["person_only"]),
            "untouched": int(sums["untouched"]),
        },
        "first_response_hours": {
            "ai": _hours(sums["frt_ai_seconds"], sums["frt_ai_n"]),
            "ai_n": int(sums["frt_ai_n"]),
            "person": _hours(sums["frt_person_seconds"], sums["frt_person_n"]),
            "person_n": int(sums["frt_person_n"]),
        },
    }


def time_saved(*, day_sums: list[dict], days: list[date], today: date, week: int = 7) -> dict:
    """Human minutes per ticket in the first week of the period against the last full week
    (the seven days before today: today's tickets are still being worked). None when the
    period is too short for two weeks that do not overlap."""
    first_end, last_start = days[0] + timedelta(days=week), today - timedelta(days=week)
    first = [row for day, row in zip(days, day_sums, strict=True) if day < first_end]
    last = [row for day, row in zip(days, day_sums, strict=True) if last_start <= day < today]
    out = {"first_week": None, "last_week": None, "saved": None, "first_week_start": days[0].isoformat()}
    if len(days) < 2 * week + 1:
        return out
    first_sums, last_sums = add_sums(first), add_sums(last)
    before = first_sums["human_minutes"] / first_sums["tickets"] if first_sums["tickets"] else None
    after = last_sums["human_minutes"] / last_sums["tickets"] if last_sums["tickets"] else None
    out |= {
        "first_week": before,
        "last_week": after,
        "first_week_tickets": int(first_sums["tickets"]),
        "last_week_tickets": int(last_sums["tickets"]),
        "last_week_start": last_start.isoformat(),
    }
    if before and after is not None:
        out["saved"] = 1 - after / before
        out["less"] = out["saved"] >= 0  # the page says "x % less" or "x % more"
        out["change"] = abs(out["saved"])
    return out

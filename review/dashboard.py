"""The supervisor dashboard: headline figures now and by day, from a fixed number of queries."""

from datetime import datetime, time, timedelta

from django.db.models import (
    Avg,
    Case,
    Count,
    DurationField,
    ExpressionWrapper,
    F,
    FloatField,
    Q,
    QuerySet,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Greatest, TruncDate
from django.utils import timezone

from agents.services import HISTORY_CUSTOMER
from autonomy import selectors as autonomy
from autonomy.calibration import (
    MIN_SAMPLING_RATE,
    weighted_estimate,
)
from autonomy.models import (
    Disposition,
    ReviewItem,
)
from outcomes import day_figures
from outcomes import report as outcomes
from tickets.models import Ticket

CLOSED = (Ticket.Status.RESOLVED, Ticket.Status.CLOSED)


def _worked() -> QuerySet[Ticket]:
    """The tickets this team worked: not imported history (``history_import`` stores it as
    tickets of one customer, created and resolved at the moment of the import), which would
    count as created and resolved in no time on the day of the import."""
    return Ticket.objects.exclude(customer__external_id=HISTORY_CUSTOMER)


def _hours(duration: timedelta | None) -> float | None:
    return duration.total_seconds() / 3600 if duration is not None else None


def _share(part: float, whole: float) -> float | None:
    return part / whole if whole else None


def _ticket_aggregates(now) -> dict:
    """Filtered counts and averages of tickets, for a period or one day (``TruncDate``)."""
    met_response = Q(first_response_at__isnull=False, first_response_at__lte=F("first_response_due")) | Q(
        first_response_at__isnull=True, first_response_due__gt=now
    )
    met_resolution = Q(resolved_at__isnull=False, resolved_at__lte=F("resolution_due")) | Q(
        resolved_at__isnull=True, resolution_due__gt=now
    )
    return {
        "created": Count("id"),
        "escalated": Count("id", filter=Q(escalated_at__isnull=False) | Q(status=Ticket.Status.ESCALATED)),
        "sla_met": Count("id", filter=met_response & met_resolution),
        "first_response": Avg(
            ExpressionWrapper(F("first_response_at") - F("created_at"), output_field=DurationField())
        ),
        "responded": Count("first_response_at"),
        "resolution": Avg(
            ExpressionWrapper(F("resolved_at") - F("created_at"), output_field=DurationField())
        ),
        "resolved": Count("resolved_at"),
    }


def _review_aggregates() -> dict:
    """Weighted sums behind autonomous accuracy (as selectors.autonomous_accuracy: each sampled
    review weighs 1 / its sampling rate; the interval on Kish's effective n)."""
    weight = ExpressionWrapper(
        Value(1.0) / Greatest(F("sampling_rate"), Value(MIN_SAMPLING_RATE)), output_field=FloatField()
    )
    confirmed = Case(When(outcome=ReviewItem.Outcome.CONFIRMED, then=weight), default=Value(0.0))
    return {
        "reviews": Count("id"),
        "w": Sum(weight),
        "w_hits": Sum(confirmed, output_field=FloatField()),
        "w_squares": Sum(weight * weight),
        "critical_errors": Count("id", filter=autonomy.CRITICAL_ERROR),
    }


def _accuracy(row: dict) -> dict:
    return weighted_estimate(
        hits=row.get("w_hits") or 0.0,
        total=row.get("w") or 0.0,
        squares=row.get("w_squares") or 0.0,
        n=row.get("reviews") or 0,
    ).to_dict()


def _ticket_figures(row: dict) -> dict:
    return {
        "tickets": row["created"],
        "escalated": row["escalated"],
        "escalation_rate": _share(row["escalated"], row["created"]),
        "sla_compliance": _share(row["sla_met"], row["created"]),
        "first_response_hours": _hours(row["first_response"]),
        "resolution_hours": _hours(row["resolution"]),
        "responded": row["responded"],
        "resolved": row["resolved"],
    }


def dashboard_report(*, days: int = 30, live: bool = False) -> dict:
    """Headline figures now and for the last ``days`` days, and the same by day.

    Ticket figures are by the day a ticket was created (its first response and resolution
    times, whether it met both SLA deadlines — or has not missed them yet — and whether it
    was ever escalated); automation rate by the day of the disposition; autonomous accuracy
    by the day the sampled review was answered, with its critical errors. Outcomes
    (``outcomes.report``): resolution, reopens, human effort and first response by the day a
    ticket was created; CSAT by the day its survey was sent — the days before yesterday read
    from ``outcomes.DayFigures`` (``outcomes.day_figures``), or all from the rows when ``live``.
    """
    now = timezone.now()
    today = timezone.localdate(now)
    first_day = today - timedelta(days=days - 1)
    start = timezone.make_aware(datetime.combine(first_day, time.min))
    start_today = timezone.make_aware(datetime.combine(today, time.min))

    tickets = _worked().filter(created_at__gte=start)
    ticket_days = {
        row["day"]: row
        for row in tickets.annotate(day=TruncDate("created_at"))
        .values("day")
        .annotate(**_ticket_aggregates(now))
        .order_by("day")
    }
    ticket_total = tickets.aggregate(**_ticket_aggregates(now))

    applied = Q(kind__in=autonomy.APPLIED)
    dispositions = Disposition.objects.filter(created_at__gte=start)
    disposition_days = {
        row["day"]: row
        for row in dispositions.annotate(day=TruncDate("created_at"))
        .values("day")
        .annotate(decisions=Count("id"), applied=Count("id", filter=applied))
        .order_by("day")
    }
    disposition_total = dispositions.aggregate(decisions=Count("id"), applied=Count("id", filter=applied))

    reviews = ReviewItem.objects.filter(
        kind=ReviewItem.Kind.DELAYED_REVIEW, status=ReviewItem.Status.DONE, decided_at__gte=start
    )
    review_days = {
        row["day"]: row
        for row in reviews.annotate(day=TruncDate("decided_at"))
        .values("day")
        .annotate(**_review_aggregates())
        .order_by("day")
    }
    review_total = reviews.aggregate(**_review_aggregates())

    day_list = [first_day + timedelta(days=i) for i in range(days)]
    backlog = _open_at_end_of(day_list, now=now)
    outcome_sums = day_figures.day_sums(day_list, live=live)
    empty_tickets = {key: 0 for key in ("created", "escalated", "sla_met", "responded", "resolved")}
    series = []
    for i, day in enumerate(day_list):
        t = ticket_days.get(day, {**empty_tickets, "first_response": None, "resolution": None})
        d = disposition_days.get(day, {"decisions": 0, "applied": 0})
        r = review_days.get(day, {})
        week = outcomes.add_sums(outcome_sums[max(0, i - 6) : i + 1])
        series.append(
            {
                "day": day,
                **_ticket_figures(t),
                "open_at_end": backlog[day],
                "decisions": d["decisions"],
                "autonomous": d["applied"],
                "automation_rate": _share(d["applied"], d["decisions"]),
                "autonomous_accuracy": _accuracy(r),
                "reviewed_autonomous": r.get("reviews", 0),
                "critical_errors": r.get("critical_errors", 0),
                "outcomes": outcomes.outcome_figures(outcome_sums[i]),
                # CSAT over the seven days to this one: a day has few answers.
                "csat_7d": outcomes.outcome_figures(week)["csat"],
            }
        )
    return {
        "days": days,
        "start": first_day,
        "today": today,
        "now": {
            "tickets_today": _worked().filter(created_at__gte=start_today).count(),
            "open": _worked().exclude(status__in=CLOSED).count(),
            "escalated": _worked().filter(status=Ticket.Status.ESCALATED).count(),
        },
        "period": {
            **_ticket_figures(ticket_total),
            "decisions": disposition_total["decisions"],
            "autonomous": disposition_total["applied"],
            "automation_rate": _share(disposition_total["applied"], disposition_total["decisions"]),
            "autonomous_accuracy": _accuracy(review_total),
            "reviewed_autonomous": review_total["reviews"],
            "critical_errors": review_total["critical_errors"],
            "outcomes": outcomes.outcome_figures(outcomes.add_sums(outcome_sums)),
            "time_saved": outcomes.time_saved(day_sums=outcome_sums, days=day_list, today=today),
        },
        "series": series,
    }


def _open_at_end_of(day_list: list, *, now) -> dict:
    """Tickets created and not yet resolved at the end of each day: one query, a filtered
    count per day."""
    ends = {
        day: min(now, timezone.make_aware(datetime.combine(day + timedelta(days=1), time.min)))
        for day in day_list
    }
    start = timezone.make_aware(datetime.combine(day_list[0], time.min))
    candidates = _worked().filter(Q(resolved_at__isnull=True) | Q(resolved_at__gte=start))
    counts = candidates.aggregate(
        **{
            f"d{i}": Count(
                "id", filter=Q(created_at__lt=end) & (Q(resolved_at__isnull=True) | Q(resolved_at__gte=end))
            )
            for i, end in enumerate(ends.values())
        }
    )
    return {day: counts[f"d{i}"] for i, day in enumerate(ends)}


def dashboard_rows(report: dict) -> list[dict]:
    """The by-day series, flat, for CSV."""
    rows = []
    for row in report["series"]:
        accuracy = row["autonomous_accuracy"]
        rows.append(
            {
                "day": row["day"].isoformat(),
                "tickets": row["tickets"],
                "open_at_end_of_day": row["open_at_end"],
                "escalated": row["escalated"],
                "escalation_rate": row["escalation_rate"],
                "sla_compliance": row["sla_compliance"],
                "avg_first_response_hours": row["first_response_hours"],
                "avg_resolution_hours": row["resolution_hours"],
                "decisions": row["decisions"],
                "autonomous": row["autonomous"],
                "automation_rate": row["automation_rate"],
                "autonomous_accuracy": accuracy["value"],
                "autonomous_accuracy_low": accuracy["low"],
                "autonomous_accuracy_high": accuracy["high"],
                "autonomous_accuracy_n": accuracy["n"],
                "critical_errors": row["critical_errors"],
                **_outcome_columns(row["outcomes"]),
            }
        )
    return rows


def _outcome_columns(figures: dict) -> dict:
    csat, handled, frt = figures["csat"], figures["handled_by"], figures["first_response_hours"]
    return {
        "resolved": figures["resolved"],
        "ai_resolved": figures["ai_resolved"],
        "ai_resolution_rate": figures["ai_resolution_rate"],
        "reopened": figures["reopened"],
        "reopen_rate": figures["reopen_rate"],
        "csat_ai": csat["ai"]["mean"],
        "csat_ai_n": csat["ai"]["n"],
        "csat_ai_response_rate": csat["ai"]["response_rate"],
        "csat_person": csat["person"]["mean"],
        "csat_person_n": csat["person"]["n"],
        "csat_person_response_rate": csat["person"]["response_rate"],
        "csat_difference": csat["difference"]["value"],
        "csat_difference_low": csat["difference"]["low"],
        "csat_difference_high": csat["difference"]["high"],
        "human_minutes": figures["human_minutes"],
        "human_minutes_per_ticket": figures["human_minutes_per_ticket"],
        "human_hours_per_100_tickets": figures["human_hours_per_100_tickets"],
        "handled_ai_only": handled["ai_only"],
        "handled_ai_and_person": handled["ai_and_person"],
        "handled_person_only": handled["person_only"],
        "not_handled_yet": handled["untouched"],
        "first_response_hours_ai": frt["ai"],
        "first_response_ai_n": frt["ai_n"],
        "first_response_hours_person": frt["person"],
        "first_response_person_n": frt["person_n"],
    }

"""The supervisor pages: autonomy (phases, readiness, transitions, rollback), alerts, the
calibration report and the dashboard, each also as CSV and JSON (``?format=csv|json``).

Thin views over review.reports (reads) and autonomy.services (writes), guarded like the
console by ``console_view`` with the supervisor permission. A phase change or a restore
takes two steps: the form (with its reason) shows a confirmation, whose button posts the
same with ``confirm=1``.
"""

import csv

from django.contrib import messages
from django.core.serializers.json import DjangoJSONEncoder
from django.http import HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string

from autonomy import selectors as autonomy_selectors
from autonomy.models import Alert, AutomationPolicy, Phase, RollbackPoint
from autonomy.services import monitor, transitions
from csai.errors import ApplicationError
from outcomes.effort import EffortRates
from review import charts, dashboard, forms, reports
from review.roles import SUPERVISE
from review.views import console_view, page_or_partial

# --- exports -------------------------------------------------------------------------------


def _wants_export(request) -> str:
    export = request.GET.get("format", "")
    if export not in ("", "csv", "json"):
        raise ApplicationError("Export formats are csv and json.")
    return export


def _export(export: str, name: str, *, rows: list[dict], data: dict) -> HttpResponse:
    """``rows`` as CSV (the report's main table), or ``data`` (all of it) as JSON."""
    if export == "json":
        response = JsonResponse(data, encoder=DjangoJSONEncoder, json_dumps_params={"indent": 1})
        response["Content-Disposition"] = f'attachment; filename="{name}.json"'
        return response
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{name}.csv"'
    if rows:
        writer = csv.DictWriter(response, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return response


# --- autonomy ------------------------------------------------------------------------------


def _autonomy_context(**extra) -> dict:
    return {
        "overview": reports.autonomy_overview(),
        "unconfigured": reports.unconfigured_decision_types(),
        "transitions": reports.recent_transitions(),
        "points": reports.recent_rollback_points(),
        **extra,
    }


@console_view(permission=SUPERVISE)
def autonomy_page(request):
    export = _wants_export(request)
    if export:
        overview = reports.autonomy_overview()
        rows = [
            {**row, **_csat_columns(o["csat"])}
            for row, o in zip(reports.readiness_rows(overview), overview, strict=True)
        ]
        data = {
            "policies": [
                {**row, "blockers": o["blockers"], "criteria": o["criteria"], "csat": o["csat"]}
                for row, o in zip(rows, overview, strict=True)
            ],
            "transitions": [reports.transition_dict(t) for t in reports.recent_transitions()],
        }
        return _export(export, "autonomy-readiness", rows=rows, data=data)
    return page_or_partial(request, "supervisor/autonomy.html", "autonomy-main", _autonomy_context())


def _csat_columns(csat: dict | None) -> dict:
    """The readiness CSV's CSAT columns (empty for a type that does not answer customers)."""
    csat = csat or {"ai": {}, "person": {}, "difference": {}}
    return {
        "csat_ai_mean": csat["ai"].get("mean"),
        "csat_ai_n": csat["ai"].get("n"),
        "csat_person_mean": csat["person"].get("mean"),
        "csat_person_n": csat["person"].get("n"),
        "csat_difference": csat["difference"].get("value"),
        "csat_difference_low": csat["difference"].get("low"),
        "csat_difference_high": csat["difference"].get("high"),
    }


def _reason(request) -> str:
    reason = request.POST.get("reason", "").strip()[:1000]
    if not reason:
        raise ApplicationError("A reason is required: say why, for the audit trail.")
    return reason


def _confirm(request, *, question: str, action: str, fields: dict, warnings=()) -> HttpResponse:
    context = {"question": question, "action": action, "fields": fields, "warnings": warnings}
    return page_or_partial(request, "supervisor/confirm.html", "autonomy-main", context)


def _changed(request, notice: str) -> HttpResponse:
    if not request.htmx:
        messages.success(request, notice)
        return redirect("supervisor-autonomy")
    return render(request, "supervisor/autonomy.html#autonomy-main", _autonomy_context(notice=notice))


@console_view(methods=("POST",), permission=SUPERVISE)
def policy_change(request, decision_type: str, direction: str):
    policy = get_object_or_404(AutomationPolicy, decision_type=decision_type)
    reason = _reason(request)
    if request.POST.get("from_phase", str(policy.phase)) != str(policy.phase):
        raise ApplicationError(
            f"{decision_type} is in phase {policy.phase} now: look again.", status_code=409
        )
    if direction == "promote":
        to_phase = policy.current_phase.next
        if to_phase is None:
            raise ApplicationError("Phase 5 is the highest phase.")
    else:
        to_phase = _int(request.POST.get("to_phase"), policy.phase - 1)
        if not Phase.FULL_OVERSIGHT <= to_phase < policy.phase:
            raise ApplicationError(
                f"Phase {policy.phase} can only be demoted to phases 1 to {policy.phase - 1}."
            )
    verb = "Promote" if direction == "promote" else "Demote"
    if request.POST.get("confirm") != "1":
        blockers = (
            autonomy_selectors.policy_readiness(policy=policy).blockers if direction == "promote" else []
        )
        return _confirm(
            request,
            question=f"{verb} {decision_type} from phase {policy.phase} to {to_phase}?",
            action=request.path,
            fields={"reason": reason, "from_phase": policy.phase, "to_phase": to_phase},
            warnings=blockers,
        )
    if direction == "promote":
        transitions.policy_promote(policy=policy, actor=request.user, reason=reason)
    else:
        transitions.policy_demote(policy=policy, actor=request.user, reason=reason, to_phase=to_phase)
    return _changed(request, f"{verb}d {decision_type} from phase {policy.phase} to {to_phase}.")


def _int(value, default: int) -> int:
    try:
        return int(value) if value not in (None, "") else default
    except ValueError:
        raise ApplicationError("Choose a phase from the list.") from None


@console_view(methods=("POST",), permission=SUPERVISE)
def rollback_restore(request, point_id: int):
    point = get_object_or_404(RollbackPoint.objects.select_related("policy"), pk=point_id)
    reason = _reason(request)
    snapshot, policy = point.snapshot, point.policy
    if request.POST.get("confirm") != "1":
        threshold = snapshot.get("threshold")
        shown = f"{threshold:.2f}" if threshold is not None else "none"
        return _confirm(
            request,
            question=(
                f"Restore {policy.decision_type} to rollback point #{point.pk} of "
                f"{point.created_at:%Y-%m-%d %H:%M}: phase {snapshot['phase']}, threshold {shown}? "
                f"It is in phase {policy.phase} now."
            ),
            action=request.path,
            fields={"reason": reason},
        )
    transitions.rollback_restore(point=point, actor=request.user, reason=reason)
    return _changed(
        request, f"Restored {policy.decision_type} to rollback point #{point.pk} (phase {snapshot['phase']})."
    )


# --- alerts --------------------------------------------------------------------------------


@console_view(permission=SUPERVISE)
def alerts_page(request):
    export = _wants_export(request)
    alerts = reports.alert_list()
    if export:
        rows = reports.alert_rows(alerts)
        return _export(export, "alerts", rows=rows, data={"alerts": rows})
    context = {"alerts": alerts, "open": reports.open_alert_count()}
    return page_or_partial(request, "supervisor/alerts.html", "alerts-table", context)


@console_view(methods=("POST",), permission=SUPERVISE)
def alert_acknowledge(request, alert_id: int):
    alert = get_object_or_404(Alert, pk=alert_id)
    done = monitor.alert_acknowledge(
        alert=alert, actor=request.user, note=request.POST.get("note", "")[:2000]
    )
    notice = "Alert acknowledged." if done else "Somebody acknowledged this alert already."
    if not request.htmx:
        messages.add_message(request, messages.SUCCESS if done else messages.INFO, notice)
        return redirect("supervisor-alerts")
    alert = Alert.objects.select_related("acknowledged_by").get(pk=alert.pk)
    row = render_to_string("supervisor/alerts.html#alert-row", {"alert": alert, "notice": notice}, request)
    # The page head's count of open alerts follows, swapped out of band.
    count = render_to_string(
        "supervisor/alerts.html#open-count", {"open": reports.open_alert_count(), "oob": True}, request
    )
    return HttpResponse(row + count)


# --- calibration ---------------------------------------------------------------------------


@console_view(permission=SUPERVISE)
def calibration_page(request):
    form = forms.CalibrationReportForm(request.GET)
    if not form.is_valid():
        context = {"form": form, "report": None}
        return page_or_partial(request, "supervisor/calibration.html", "report", context, status=400)
    export = _wants_export(request)
    report = reports.calibration_report(
        decision_type=form.cleaned_data["decision_type"], target=form.cleaned_data["target"]
    )
    if export:
        return _export(
            export, f"calibration-{report['decision_type']}",
            rows=report["classes"], data=reports.calibration_dict(report),
        )  # fmt: skip
    charts_ = {
        "reliability": charts.reliability_chart(report["bins"]),
        "risk": charts.risk_coverage_chart(
            report["curve"],
            current=report["current"]["threshold"],
            suggested=report["suggested"]["threshold"],
        ),
        "confusion": charts.confusion_chart(report["confusion"]) if report["confusion"]["labels"] else "",
    }
    context = {
        "form": form,
        "report": report,
        "charts": charts_,
        "confusion_rows": zip(report["confusion"]["labels"], report["confusion"]["rows"], strict=True),
        "query": request.GET.urlencode(),
    }
    return page_or_partial(request, "supervisor/calibration.html", "report", context)


# --- dashboard -----------------------------------------------------------------------------

DAY_CHOICES = [7, 14, 30, 90, 365]  # the period picker's options (any 1..365 works by URL)
DASHBOARD_CHARTS = [
    # key, title, kind, percent, unit, band
    ("tickets", "Tickets created", "bars", False, "", False),
    ("open_at_end", "Open tickets at the end of the day", "line", False, "", False),
    ("automation_rate", "Automation rate", "line", True, "", False),
    ("autonomous_accuracy.value", "Autonomous accuracy (95 % interval shaded)", "line", True, "", True),
    ("first_response_hours", "Average first response time", "line", False, " h", False),
    ("resolution_hours", "Average resolution time", "line", False, " h", False),
    ("sla_compliance", "SLA compliance", "line", True, "", False),
    ("escalation_rate", "Escalation rate", "line", True, "", False),
]


def _outcome(*path):
    def value(row):
        for part in path:
            row = row[part]
        return row

    return value


# A day's rate is charted from this many tickets or surveys on: one resolution reopened is
# not "100 % reopened" (the tables and exports keep every day's figure).
CHART_MIN_COUNT = 5


def _rate(value_path: tuple, count_path: tuple):
    value, count = _outcome(*value_path), _outcome(*count_path)
    return lambda row: value(row) if count(row) >= CHART_MIN_COUNT else None


AI_LINE, PERSON_LINE = "s1", "s2"
_per_ticket = _outcome("outcomes", "human_minutes_per_ticket")
_frt_person = _outcome("outcomes", "first_response_hours", "person")
_ai_resolution = _rate(("outcomes", "ai_resolution_rate"), ("outcomes", "resolved"))
_reopens = _rate(("outcomes", "reopen_rate"), ("outcomes", "ever_resolved"))
_csat_ai_rate = _rate(("outcomes", "csat", "ai", "response_rate"), ("outcomes", "csat", "ai", "sent"))
_csat_person_rate = _rate(
    ("outcomes", "csat", "person", "response_rate"), ("outcomes", "csat", "person", "sent")
)


def _outcome_figures(report: dict) -> list[dict]:
    """The outcomes section's charts: AI against person wherever both are measured."""
    series, saved = report["series"], report["period"]["time_saved"]
    baseline = (
        [charts.Marker(saved["first_week"], f"first week: {saved['first_week']:.1f} min", "m1")]
        if saved["first_week"] is not None
        else []
    )
    specs = [
        ("csat", "Customer satisfaction (CSAT 1–5, the 7 days to each day)", {"y_range": (1, 5)}, [
            charts.Line(_outcome("csat_7d", "ai", "mean"), "AI-resolved", AI_LINE),
            charts.Line(_outcome("csat_7d", "person", "mean"), "Person-resolved", PERSON_LINE),
        ]),
        ("resolution", "AI resolution rate and reopen rate", {"percent": True}, [
            charts.Line(_ai_resolution, "AI-resolved share of resolved", AI_LINE),
            charts.Line(_reopens, "Reopened share of resolved", PERSON_LINE),
        ]),
        ("effort", "Human minutes per ticket", {"unit": " min", "levels": baseline}, [
            charts.Line(_per_ticket, "minutes per ticket", AI_LINE, "bars"),
        ]),
        ("first-response", "First response time by who answered", {"unit": " h"}, [
            charts.Line(_outcome("outcomes", "first_response_hours", "ai"), "AI answered", AI_LINE),
            charts.Line(_frt_person, "Person answered", PERSON_LINE),
        ]),
        ("csat-response", "CSAT response rate", {"percent": True}, [
            charts.Line(_csat_ai_rate, "AI-resolved", AI_LINE),
            charts.Line(_csat_person_rate, "Person-resolved", PERSON_LINE),
        ]),
        ("critical", "Critical errors in reviewed autonomous decisions (target: 0)", {}, [
            charts.Line(_outcome("critical_errors"), "critical errors", "s3", "bars"),
        ]),
    ]  # fmt: skip
    notes = {
        "critical": "None in the period." if not report["period"]["critical_errors"] else "",
        "resolution": f"Days with at least {CHART_MIN_COUNT} resolved tickets.",
    }
    return [
        {
            "id": key,
            "title": title,
            "legend": [(line.name, line.css) for line in lines] if len(lines) > 1 else [],
            "note": notes.get(key, ""),
            "chart": charts.daily_lines_chart(series, title=title, lines=lines, **options),
        }
        for key, title, options, lines in specs
    ]


@console_view(permission=SUPERVISE)
def dashboard_page(request):
    form = forms.DashboardForm(request.GET)
    if not form.is_valid():
        context = {"form": form, "report": None, "days": 30, "day_choices": DAY_CHOICES}
        return page_or_partial(request, "supervisor/dashboard.html", "dashboard", context, status=400)
    export = _wants_export(request)
    report = dashboard.dashboard_report(days=form.cleaned_data["days"])
    if export:
        rows = dashboard.dashboard_rows(report)
        data = {**report, "series": rows}
        return _export(export, f"dashboard-{report['days']}d", rows=rows, data=data)
    figures = [
        {
            "title": title,
            "chart": charts.daily_chart(
                report["series"], title=title, key=key, kind=kind, percent=percent, unit=unit, band=band
            ),
        }
        for key, title, kind, percent, unit, band in DASHBOARD_CHARTS
    ]
    days = report["days"]
    context = {
        "form": form,
        "report": report,
        "figures": figures,
        "outcome_figures": _outcome_figures(report),
        "effort_rates": EffortRates.from_settings(),
        "query": request.GET.urlencode(),
        "days": days,
        "day_choices": sorted({*DAY_CHOICES, days}),
    }
    return page_or_partial(request, "supervisor/dashboard.html", "dashboard", context)

"""Small server-rendered SVG charts for the supervisor pages: no front-end build, no library.

Each chart is an ``<svg role="img">`` with a ``<title>`` and ``aria-label``; every page shows
the same numbers in a table too. Colours come from site.css classes (``.chart …``).
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from review.templatetags.labels import display

WIDTH, HEIGHT = 560, 240
LEFT, RIGHT, TOP, BOTTOM = 48, 16, 14, 34


@dataclass
class Series:
    points: Sequence[tuple[float, float | None]]
    kind: str = "line"  # line | bars | dots
    css: str = "s1"
    name: str = ""
    # (low, high) per point: a shaded band (an interval) behind a line.
    band: Sequence[tuple[float | None, float | None]] = ()
    sizes: Sequence[float] = ()  # dots: relative size 0..1


@dataclass
class Marker:
    """A vertical line at x with a label (a threshold)."""

    x: float
    label: str
    css: str = "m1"


@dataclass
class Axes:
    x_min: float
    x_max: float
    y_min: float
    y_max: float
    x_ticks: Sequence[tuple[float, str]] = ()
    y_ticks: Sequence[tuple[float, str]] = ()
    x_title: str = ""
    y_title: str = ""
    markers: Sequence[Marker] = field(default_factory=list)
    # Horizontal reference lines: Marker.x is the y value (a baseline, a target).
    levels: Sequence[Marker] = field(default_factory=list)
    diagonal: bool = False


def _sx(axes: Axes, x: float) -> float:
    span = (axes.x_max - axes.x_min) or 1.0
    return LEFT + (x - axes.x_min) / span * (WIDTH - LEFT - RIGHT)


def _sy(axes: Axes, y: float) -> float:
    span = (axes.y_max - axes.y_min) or 1.0
    return HEIGHT - BOTTOM - (y - axes.y_min) / span * (HEIGHT - TOP - BOTTOM)


def _f(v: float) -> str:
    return f"{v:.1f}"


def xy_chart(*, title: str, axes: Axes, series: Sequence[Series], description: str = "") -> SafeString:
    """A chart over two numeric axes: lines (gaps where a value is None), bars or dots."""
    out = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape(title)}"'
        f' xmlns="http://www.w3.org/2000/svg" preserveAspectRatio="xMidYMid meet">',
        f"<title>{escape(title)}</title>",
    ]
    if description:
        out.append(f"<desc>{escape(description)}</desc>")
    for y, text in axes.y_ticks:
        sy = _f(_sy(axes, y))
        out.append(f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{sy}" y2="{sy}"/>')
        out.append(
            f'<text class="tick" x="{LEFT - 6}" y="{sy}" text-anchor="end" dy="0.32em">{escape(text)}</text>'
        )
    for x, text in axes.x_ticks:
        sx = _f(_sx(axes, x))
        out.append(
            f'<text class="tick" x="{sx}" y="{HEIGHT - BOTTOM + 16}" text-anchor="middle">'
            f"{escape(text)}</text>"
        )
    base = _f(_sy(axes, axes.y_min))
    out.append(f'<line class="axis" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{base}" y2="{base}"/>')
    out.append(f'<line class="axis" x1="{LEFT}" x2="{LEFT}" y1="{TOP}" y2="{base}"/>')
    if axes.diagonal:
        x0, y0 = _sx(axes, axes.x_min), _sy(axes, axes.y_min)
        x1, y1 = _sx(axes, axes.x_max), _sy(axes, axes.y_max)
        out.append(f'<line class="ideal" x1="{_f(x0)}" y1="{_f(y0)}" x2="{_f(x1)}" y2="{_f(y1)}"/>')
    for s in series:
        out.extend(_series(axes, s))
    for marker in axes.markers:
        sx = _f(_sx(axes, marker.x))
        out.append(f'<line class="marker {marker.css}" x1="{sx}" x2="{sx}" y1="{TOP}" y2="{base}"/>')
        anchor = "end" if _sx(axes, marker.x) > WIDTH * 0.7 else "start"
        dx = "-4" if anchor == "end" else "4"
        out.append(
            f'<text class="marker-label {marker.css}" x="{sx}" y="{TOP + 10}" dx="{dx}"'
            f' text-anchor="{anchor}">{escape(marker.label)}</text>'
        )
    for level in axes.levels:
        sy = _f(_sy(axes, level.x))
        out.append(f'<line class="level {level.css}" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{sy}" y2="{sy}"/>')
        out.append(
            f'<text class="marker-label {level.css}" x="{WIDTH - RIGHT}" y="{sy}" dy="-4"'
            f' text-anchor="end">{escape(level.label)}</text>'
        )
    if axes.x_title:
        out.append(
            f'<text class="axis-title" x="{(LEFT + WIDTH - RIGHT) / 2}" y="{HEIGHT - 3}"'
            f' text-anchor="middle">{escape(axes.x_title)}</text>'
        )
    if axes.y_title:
        out.append(
            f'<text class="axis-title" x="10" y="{(TOP + HEIGHT - BOTTOM) / 2}" text-anchor="middle"'
            f' transform="rotate(-90 10 {(TOP + HEIGHT - BOTTOM) / 2})">{escape(axes.y_title)}</text>'
        )
    out.append("</svg>")
    return mark_safe("".join(out))  # noqa: S308 - every text above is escaped


def _series(axes: Axes, s: Series) -> list[str]:
    out = []
    present = [(x, y) for x, y in s.points if y is not None]
    if s.band:
        for run in _runs([(x, b) for (x, _), b in zip(s.points, s.band, strict=True)]):
            upper = " ".join(f"{_f(_sx(axes, x))},{_f(_sy(axes, hi))}" for x, (_, hi) in run)
            lower = " ".join(f"{_f(_sx(axes, x))},{_f(_sy(axes, lo))}" for x, (lo, _) in reversed(run))
            out.append(f'<polygon class="band {s.css}" points="{upper} {lower}"/>')
    if s.kind == "bars":
        n = max(len(s.points), 1)
        width = max((WIDTH - LEFT - RIGHT) / n * 0.7, 1.0)
        base = _sy(axes, max(axes.y_min, 0))
        for x, y in present:
            top = _sy(axes, y)
            out.append(
                f'<rect class="bar {s.css}" x="{_f(_sx(axes, x) - width / 2)}" y="{_f(min(top, base))}"'
                f' width="{_f(width)}" height="{_f(abs(base - top))}">'
                f"<title>{escape(_label(x, y))}</title></rect>"
            )
    elif s.kind == "dots":
        sizes = s.sizes or [0.5] * len(s.points)
        for (x, y), size in zip(s.points, sizes, strict=True):
            if y is None:
                continue
            out.append(
                f'<circle class="dot {s.css}" cx="{_f(_sx(axes, x))}" cy="{_f(_sy(axes, y))}"'
                f' r="{_f(3 + 5 * size)}"><title>{escape(_label(x, y))}</title></circle>'
            )
    else:
        for run in _runs(s.points):
            line = " ".join(f"{_f(_sx(axes, x))},{_f(_sy(axes, y))}" for x, y in run)
            out.append(f'<polyline class="line {s.css}" points="{line}"/>')
        if len(present) <= 40:
            for x, y in present:
                out.append(
                    f'<circle class="point {s.css}" cx="{_f(_sx(axes, x))}" cy="{_f(_sy(axes, y))}" r="2.5"/>'
                )
    return out


def _runs(points):
    """Consecutive points with a value: a line breaks where there is none."""
    run = []
    for x, y in points:
        if y is None or (isinstance(y, tuple) and None in y):
            if run:
                yield run
            run = []
        else:
            run.append((x, y))
    if run:
        yield run


def _label(x: float, y: float) -> str:
    return f"{x:g}: {y:g}"


def percent_ticks(low: float = 0.0, high: float = 1.0, step: float = 0.25) -> list[tuple[float, str]]:
    ticks, value = [], low
    while value <= high + 1e-9:
        ticks.append((round(value, 4), f"{value:.0%}"))
        value += step
    return ticks


def count_ticks(top: float) -> list[tuple[float, str]]:
    """About four round steps from 0 to at least ``top``."""
    top = max(top, 1.0)
    step = 1.0
    for candidate in (1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 5000, 10000, 50000):
        step = candidate
        if top / candidate <= 4:
            break
    ticks, value = [], 0.0
    while value < top + step:
        ticks.append((value, f"{value:g}"))
        value += step
        if value > top:
            ticks.append((value, f"{value:g}"))
            break
    return ticks


def heatmap(*, title: str, labels: Sequence[str], matrix: Sequence[Sequence[int]]) -> SafeString:
    """A confusion matrix: rows the people's answer, columns the AI's; a count in every cell."""
    n = len(labels)
    cell = 46 if n <= 6 else 34 if n <= 10 else 26
    left, top = 150, 135
    width, height = left + n * cell + 110, top + n * cell + 8
    peak = max((v for row in matrix for v in row), default=0) or 1
    out = [
        f'<svg class="chart heatmap" viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}"'
        f' xmlns="http://www.w3.org/2000/svg" width="{width}">',
        f"<title>{escape(title)}</title>",
        f'<text class="axis-title" x="{left + n * cell / 2}" y="12" text-anchor="middle">AI answer →</text>',
        f'<text class="axis-title" x="4" y="{top - 8}">Human answer ↓</text>',
    ]
    for j, label in enumerate(labels):
        x = left + j * cell + cell / 2
        out.append(
            f'<text class="tick" transform="translate({_f(x)} {top - 6}) rotate(-50)">'
            f"{escape(label[:22])}</text>"
        )
    for i, label in enumerate(labels):
        y = top + i * cell
        out.append(
            f'<text class="tick" x="{left - 6}" y="{_f(y + cell / 2)}" text-anchor="end" dy="0.32em">'
            f"{escape(label[:22])}</text>"
        )
        for j, value in enumerate(matrix[i]):
            x = left + j * cell
            share = value / peak
            css = "diag" if i == j else "off"
            out.append(
                f'<rect class="cell {css}" x="{x}" y="{y}" width="{cell - 2}" height="{cell - 2}"'
                f' fill-opacity="{0.08 + 0.92 * share:.2f}">'
                f"<title>{escape(f'human {label}, AI {labels[j]}: {value}')}"
                "</title></rect>"
            )
            if value:
                ink = "light" if share > 0.55 else "dark"
                out.append(
                    f'<text class="cell-n {ink}" x="{_f(x + (cell - 2) / 2)}" y="{_f(y + (cell - 2) / 2)}"'
                    f' text-anchor="middle" dy="0.32em">{value}</text>'
                )
    out.append("</svg>")
    return mark_safe("".join(out))  # noqa: S308 - every text above is escaped


# --- the supervisor pages' charts ------------------------------------------------------------


def reliability_chart(bins: Sequence[dict]) -> SafeString:
    """Accuracy against mean confidence per confidence bin; the diagonal is perfect calibration."""
    peak = max((b["n"] for b in bins), default=1)
    return xy_chart(
        title="Reliability diagram: accuracy against calibrated confidence",
        description="Dots on the diagonal are well calibrated; below it the model is overconfident.",
        axes=Axes(
            0,
            1,
            0,
            1,
            x_ticks=percent_ticks(),
            y_ticks=percent_ticks(),
            x_title="calibrated confidence",
            y_title="accuracy",
            diagonal=True,
        ),  # fmt: skip
        series=[
            Series([(b["confidence"], b["accuracy"]) for b in bins], kind="line", css="s1", name="accuracy"),
            Series(
                [(b["confidence"], b["accuracy"]) for b in bins],
                kind="dots",
                css="s1",
                sizes=[b["n"] / peak for b in bins],
            ),  # fmt: skip
        ],
    )


def risk_coverage_chart(
    curve: Sequence[dict], *, current: float | None, suggested: float | None
) -> SafeString:
    """The share of mistakes when acting on the most confident share of decisions."""
    markers = []
    for threshold, label, css in ((current, "current", "m1"), (suggested, "suggested", "m2")):
        if threshold is None or not curve:
            continue
        covered = [p["coverage"] for p in curve if p["confidence"] >= threshold]
        markers.append(Marker(max(covered, default=0.0), f"{label} ≥ {threshold:.2f}", css))
    top = max([p["risk"] for p in curve] + [0.05])
    top = min(1.0, (int(top * 20) + 1) / 20)
    return xy_chart(
        title="Risk–coverage: share of mistakes among the decisions acted on",
        axes=Axes(
            0,
            1,
            0,
            top,
            x_ticks=percent_ticks(),
            y_ticks=percent_ticks(0, top, step=max(top / 4, 0.01)),
            x_title="coverage (most confident first)",
            y_title="risk",
            markers=markers,
        ),  # fmt: skip
        series=[Series([(p["coverage"], p["risk"]) for p in curve], kind="line", css="s2")],
    )


def confusion_chart(matrix: dict) -> SafeString:
    return heatmap(
        title="Confusion matrix: human answer (rows) against AI answer (columns)",
        labels=[display(label) for label in matrix["labels"]],
        matrix=matrix["rows"],
    )


def daily_chart(
    series: Sequence[dict], *, title: str, key: str, kind: str = "line", percent: bool = False,
    unit: str = "", band: bool = False,
) -> SafeString:  # fmt: skip
    """One figure of the dashboard by day; ``key`` may be ``a.b`` for a nested value."""

    def value(row):
        v = row
        for part in key.split("."):
            v = v[part]
        return v

    points = [(float(i), value(row)) for i, row in enumerate(series)]
    bands = (
        [(row[key.split(".")[0]]["low"], row[key.split(".")[0]]["high"]) for row in series] if band else []
    )
    values = [v for _, v in points if v is not None] + [low for low, _ in bands if low is not None]
    if percent:
        y_min = 0.0 if not values or min(values) < 0.5 else 0.5
        axes_y = (y_min, 1.0, percent_ticks(y_min, 1.0, step=0.25 if y_min == 0 else 0.1))
    else:
        ticks = count_ticks(max(values, default=0))
        axes_y = (0.0, ticks[-1][0], [(v, f"{label}{unit}") for v, label in ticks])
    n = len(series)
    step = max(1, n // 6)
    x_ticks = [(float(i), series[i]["day"].strftime("%d %b")) for i in range(0, n, step)]
    return xy_chart(
        title=f"{title}, by day",
        axes=Axes(-0.5, n - 0.5, axes_y[0], axes_y[1], x_ticks=x_ticks, y_ticks=axes_y[2]),
        series=[Series(points, kind=kind, css="s1", band=bands)],
    )


@dataclass(frozen=True)
class Line:
    """One series of a by-day chart: how to read its value from a day's row, and its name."""

    value: Callable[[dict], float | None]
    name: str
    css: str = "s1"
    kind: str = "line"


def daily_lines_chart(
    series: Sequence[dict], *, title: str, lines: Sequence[Line], percent: bool = False, unit: str = "",
    y_range: tuple[float, float] | None = None, levels: Sequence[Marker] = (),
) -> SafeString:  # fmt: skip
    """Several figures by day on one axis (AI against person); the page shows their legend."""
    points = [[(float(i), line.value(row)) for i, row in enumerate(series)] for line in lines]
    values = [v for run in points for _, v in run if v is not None] + [level.x for level in levels]
    if y_range is not None:
        low, high = y_range
        y_ticks = [(float(v), f"{v:g}{unit}") for v in range(int(low), int(high) + 1)]
    elif percent:
        low, high = 0.0, 1.0
        y_ticks = percent_ticks()
    else:
        ticks = count_ticks(max(values, default=0))
        low, high = 0.0, ticks[-1][0]
        y_ticks = [(v, f"{label}{unit}") for v, label in ticks]
    n = len(series)
    step = max(1, n // 6)
    x_ticks = [(float(i), series[i]["day"].strftime("%d %b")) for i in range(0, n, step)]
    return xy_chart(
        title=f"{title}, by day",
        description=", ".join(line.name for line in lines),
        axes=Axes(-0.5, n - 0.5, low, high, x_ticks=x_ticks, y_ticks=y_ticks, levels=levels),
        series=[
            Series(run, kind=line.kind, css=line.css, name=line.name)
            for run, line in zip(points, lines, strict=True)
        ],
    )

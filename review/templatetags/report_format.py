"""Numbers as the supervisor pages show them: "—" for nothing yet."""

from django import template

register = template.Library()
NOTHING = "—"


@register.filter
def pct(value, digits: int = 1) -> str:
    """0.9234 → "92.3 %"."""
    if value is None or value == "":
        return NOTHING
    return f"{float(value) * 100:.{int(digits)}f} %"


@register.filter
def num(value, digits: int = 2) -> str:
    if value is None or value == "":
        return NOTHING
    return f"{float(value):.{int(digits)}f}"


@register.filter
def hours(value) -> str:
    """Hours as "45 min", "3.2 h" or "2.1 d"."""
    if value is None:
        return NOTHING
    value = float(value)
    if value < 1:
        return f"{value * 60:.0f} min"
    if value < 48:
        return f"{value:.1f} h"
    return f"{value / 24:.1f} d"


@register.filter
def interval(estimate: dict) -> str:
    """{"value", "low", "high", "n"} → "93.1 % (90.2–95.3 %, n=412)"."""
    if not estimate or estimate.get("value") is None:
        return f"{NOTHING} (n=0)"
    low, high = estimate["low"] * 100, estimate["high"] * 100
    return f"{pct(estimate['value'])} ({low:.1f}–{high:.1f} %, n={estimate['n']})"


@register.filter
def minutes(value) -> str:
    """Minutes as "4.2 min" (or "1.5 h" from 90 minutes)."""
    if value is None:
        return NOTHING
    value = float(value)
    return f"{value:.1f} min" if value < 90 else f"{value / 60:.1f} h"


@register.filter
def signed(value, digits: int = 2) -> str:
    """A difference with its sign: "+0.12", "−0.30"."""
    if value is None:
        return NOTHING
    text = f"{abs(float(value)):.{int(digits)}f}"
    return f"−{text}" if float(value) < 0 and float(text) != 0 else f"+{text}"

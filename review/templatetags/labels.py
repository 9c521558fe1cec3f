"""A stored code as people read it: ``{{ d.label|display }}`` → "Technical Issue".

A model field has its ``get_FOO_display``; this filter is for a code that travels without
its field: a decision's label, a decision type in a report row, a class of the confusion
matrix, a team. Known codes take their choices' label; any other (a label of a newer model)
is spelt as Django spells a choice without one. Codes stay codes where they are values:
form values, URLs, ids, CSS classes, exports.
"""

from django import template

from agents.models import NO_ESCALATION, DecisionType, EscalationPath, Strategy
from tickets.models import Category, Priority, Tier

register = template.Library()

_LABELS = {
    code: label
    for choices in (DecisionType, Category, Priority, Strategy, EscalationPath, Tier)
    for code, label in choices.choices
} | {NO_ESCALATION: "No escalation"}


@register.filter
def display(code) -> str:
    """BILLING_INQUIRY → "Billing Inquiry", not_sent → "Not Sent"; "" and None unchanged."""
    if code is None or code == "":
        return code
    code = str(code)
    return _LABELS.get(code) or code.replace("_", " ").title()

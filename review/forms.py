from django import forms
from django.contrib.auth import get_user_model

from agents.models import DecisionType
from agents.proposers import ESCALATION_PATHS
from review import selectors
from tickets.models import Category, Priority
from tickets.roles import REVIEWER, SUPERVISOR


def _any(label: str, choices) -> list[tuple[str, str]]:
    return [("", label), *choices]


class QueueFilterForm(forms.Form):
    decision_type = forms.ChoiceField(
        label="Decision", required=False, choices=_any("All decisions", DecisionType.choices)
    )
    category = forms.ChoiceField(
        label="Category", required=False, choices=_any("All categories", Category.choices)
    )
    priority = forms.ChoiceField(
        label="Priority", required=False, choices=_any("All priorities", Priority.choices)
    )
    age = forms.ChoiceField(
        label="Waiting",
        required=False,
        choices=_any("Any age", [(key, f"over {key}") for key in selectors.AGES]),
    )
    page = forms.IntegerField(required=False, min_value=1, max_value=10_000, widget=forms.HiddenInput)

    def filters(self) -> selectors.QueueFilters:
        data = {k: v for k, v in self.cleaned_data.items() if k != "page"}
        return selectors.QueueFilters(**data)


TEAMS = [("", "No team"), ("general", "general"), *[(path, path) for path in ESCALATION_PATHS]]


class ReassignForm(forms.Form):
    team = forms.ChoiceField(label="Team", required=False, choices=TEAMS)
    assignee = forms.ModelChoiceField(
        label="Assignee",
        required=False,
        empty_label="Nobody in particular",
        queryset=get_user_model()
        .objects.filter(is_active=True, groups__name__in=[REVIEWER, SUPERVISOR])
        .distinct()
        .order_by("username"),
    )

from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.contrib.auth.validators import UnicodeUsernameValidator

from agents import decision_types
from agents.models import DecisionType, EscalationPath
from review import selectors
from review.roles import TEAM_ROLES
from tickets.models import Category, Priority
from tickets.roles import REVIEWER, SUPERVISOR


def _any(label: str, choices) -> list[tuple[str, str]]:
    return [("", label), *choices]


class QueueFilterForm(forms.Form):
    decision_type = forms.ChoiceField(label="Decision", required=False)
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

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["decision_type"].choices = _any("All decisions", decision_types.choices())

    def filters(self) -> selectors.QueueFilters:
        data = {k: v for k, v in self.cleaned_data.items() if k != "page"}
        return selectors.QueueFilters(**data)


TEAMS = [("", "No team"), ("general", "general"), *[(path, path) for path in EscalationPath.values]]


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


# --- supervisor pages ----------------------------------------------------------------------

EXPORT_FORMATS = [("", "page"), ("csv", "CSV"), ("json", "JSON")]


class CalibrationReportForm(forms.Form):
    decision_type = forms.ChoiceField(label="Decision type", required=False)
    target = forms.FloatField(
        label="Target precision", required=False, min_value=0.5, max_value=0.999,
        widget=forms.NumberInput(attrs={"step": "0.005"}),
    )  # fmt: skip
    format = forms.ChoiceField(required=False, choices=EXPORT_FORMATS, widget=forms.HiddenInput)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["decision_type"].choices = decision_types.choices()

    def clean_decision_type(self) -> str:
        return self.cleaned_data["decision_type"] or DecisionType.CATEGORY


class DashboardForm(forms.Form):
    days = forms.IntegerField(label="Days", required=False, min_value=1, max_value=365)
    format = forms.ChoiceField(required=False, choices=EXPORT_FORMATS, widget=forms.HiddenInput)

    def clean_days(self) -> int:
        return self.cleaned_data["days"] or 30


# --- the team page -------------------------------------------------------------------------


class PersonAddForm(forms.Form):
    """A new person on the team page (review.team_services.person_add checks it again)."""

    username = forms.CharField(
        label="Username", max_length=150, validators=[UnicodeUsernameValidator()],
        widget=forms.TextInput(attrs={"autocomplete": "off", "autocapitalize": "none"}),
    )  # fmt: skip
    first_name = forms.CharField(label="First name", max_length=150, required=False)
    last_name = forms.CharField(label="Last name", max_length=150, required=False)
    email = forms.EmailField(label="Email", required=False)
    role = forms.ChoiceField(label="Role", choices=list(TEAM_ROLES.items()), initial=REVIEWER)
    password = forms.CharField(
        label="Password", required=False, strip=False,
        help_text="Leave empty to generate one; it is shown once, to hand over.",
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )  # fmt: skip

    def clean_username(self) -> str:
        User = get_user_model()
        username = User.normalize_username(self.cleaned_data["username"].strip())
        if User.objects.filter(username__iexact=username).exists():
            raise forms.ValidationError(f"The username {username} is taken.")
        return username

    def clean(self) -> dict:
        cleaned = super().clean()
        password = cleaned.get("password")
        if password:
            names = ("username", "first_name", "last_name", "email")
            person = get_user_model()(**{name: cleaned.get(name) or "" for name in names})
            try:
                validate_password(password, person)
            except forms.ValidationError as error:
                self.add_error("password", error)
        return cleaned

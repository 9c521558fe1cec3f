from django import forms

from outcomes.services import COMMENT_MAX_CHARS

ASK = "Choose a score from 1 to 5."
SCORES = [(1, "Very poor"), (2, "Poor"), (3, "Okay"), (4, "Good"), (5, "Excellent")]


class SurveyForm(forms.Form):
    score = forms.TypedChoiceField(
        choices=SCORES, coerce=int, error_messages={"required": ASK, "invalid_choice": ASK}
    )
    comment = forms.CharField(required=False, max_length=COMMENT_MAX_CHARS)

"""The customer's satisfaction survey: a public page, no login — the signed link is the
permission. It shows one question, takes one answer, and keeps nothing else about the
visitor (no session, no address)."""

from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from csai.errors import ApplicationError
from outcomes import services
from outcomes.forms import SCORES, SurveyForm
from outcomes.links import SURVEY
from outcomes.models import Survey

REFUSED_TITLES = {
    404: "This link does not work",
    409: "You have answered already",
    410: "This survey has closed",
}


def _refused(request, error: ApplicationError):
    context = {"title": REFUSED_TITLES.get(error.status_code, "This cannot be done"), "error": error}
    return render(request, "outcomes/refused.html", context, status=error.status_code)


def _survey(token: str) -> Survey:
    survey_id = SURVEY.pk_from(token)
    survey = Survey.objects.select_related("ticket").filter(pk=survey_id).first() if survey_id else None
    if survey is None:
        raise ApplicationError(
            "The link is incomplete or was changed. Open it again from the mail we sent you.", status_code=404
        )
    return survey


@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
def survey(request, token: str):
    """GET: the question; POST: the answer, stored once, then thanks."""
    try:
        survey = _survey(token)
        services.survey_refusal(survey=survey, now=timezone.now())
        form = SurveyForm(request.POST if request.method == "POST" else None)
        if request.method == "POST" and form.is_valid():
            services.survey_answer(
                survey_id=survey.pk, score=form.cleaned_data["score"], comment=form.cleaned_data["comment"]
            )
            return render(request, "outcomes/thanks.html", {"score": form.cleaned_data["score"]})
    except ApplicationError as error:
        return _refused(request, error)
    context = {"survey": survey, "ticket": survey.ticket, "form": form, "scores": SCORES}
    return render(request, "outcomes/survey.html", context, status=400 if form.errors else 200)

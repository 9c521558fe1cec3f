"""The link in the customer's satisfaction survey mail: signed, naming the survey, answered by
``outcomes.views.survey``."""

from csai.links import SignedLink

SURVEY = SignedLink(view="csat-survey", salt="outcomes.links.csat")

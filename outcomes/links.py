"""The survey link in the customer's mail: signed, no login — the signature is the permission.

The token names the survey (its id), signed with ``SECRET_KEY`` and a salt of its own, so a
token made for another purpose (a reply's confirm link) is refused here. Expiry and single
use are the survey's (``expires_at``, ``answered_at``), checked when it is answered.
"""

from django.conf import settings
from django.core import signing
from django.urls import reverse

SURVEY_SALT = "outcomes.links.csat"


def survey_token(*, survey_id: int) -> str:
    return signing.dumps(survey_id, salt=SURVEY_SALT, compress=True)


def survey_url(*, survey_id: int) -> str:
    path = reverse("csat-survey", args=[survey_token(survey_id=survey_id)])
    return f"{settings.CSAI_PUBLIC_URL}{path}"


def survey_id_from(token: str) -> int | None:
    """The survey a token names; None when we did not make it (forged, altered)."""
    try:
        value = signing.loads(token, salt=SURVEY_SALT)
    except signing.BadSignature:
        return None
    return value if isinstance(value, int) else None

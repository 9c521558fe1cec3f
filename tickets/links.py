"""Signed links in the mails to customers: no login, the signature is the permission.

"Yes, this solved my problem" in each reply names the reply (its message id), signed with
``SECRET_KEY`` and a salt of its own, so a token made for another purpose (the survey's) is
refused here. ``tickets.views.resolution_confirm`` answers it.
"""

from django.conf import settings
from django.core import signing
from django.urls import reverse

CONFIRM_SALT = "tickets.links.confirm-solved"


def confirm_token(*, message_id: int) -> str:
    return signing.dumps(message_id, salt=CONFIRM_SALT, compress=True)


def confirm_url(*, message_id: int) -> str:
    """The absolute link a customer follows to say the reply solved their problem."""
    path = reverse("resolution-confirm", args=[confirm_token(message_id=message_id)])
    return f"{settings.CSAI_PUBLIC_URL}{path}"


def confirm_message_id(token: str) -> int | None:
    """The reply a confirm token names; None when it was not made by us (forged, altered)."""
    try:
        value = signing.loads(token, salt=CONFIRM_SALT)
    except signing.BadSignature:
        return None
    return value if isinstance(value, int) else None

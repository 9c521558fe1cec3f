"""Signed links in the mails to customers: no login, the signature is the permission.

A link names one row by its id, signed with ``SECRET_KEY`` and a salt of its purpose, so a
token made for one purpose (a reply's confirm link) is refused by another (the survey).
Expiry and single use belong to the row the link names, checked where it is answered.
"""

from dataclasses import dataclass

from django.conf import settings
from django.core import signing
from django.urls import reverse


@dataclass(frozen=True)
class SignedLink:
    view: str  # the URL name the token is the one argument of
    salt: str  # the purpose

    def token(self, pk: int) -> str:
        return signing.dumps(pk, salt=self.salt, compress=True)

    def url(self, pk: int) -> str:
        """The absolute link, on the address customers reach (``CSAI_PUBLIC_URL``)."""
        return f"{settings.CSAI_PUBLIC_URL}{reverse(self.view, args=[self.token(pk)])}"

    def pk_from(self, token: str) -> int | None:
        """The id a token names; None when we did not make it for this purpose (forged, altered)."""
        try:
            value = signing.loads(token, salt=self.salt)
        except signing.BadSignature:
            return None
        return value if isinstance(value, int) else None

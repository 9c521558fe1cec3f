"""Webhook signatures: ``X-CSAI-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256>``.

The HMAC covers ``"<t>.<raw body>"`` with ``CSAI_WEBHOOK_SECRET``. A timestamp further
than the tolerance (5 minutes) from now is refused, so a captured request cannot be
replayed later; within the window a replay only finds the ticket it already created.
"""

import hashlib
import hmac
import time

HEADER = "X-CSAI-Signature"


class SignatureError(Exception):
    pass


def sign(*, secret: str, body: bytes, timestamp: int | None = None) -> str:
    """The header value a sender puts on ``body``."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={digest.hexdigest()}"


def verify(*, secret: str, header: str | None, body: bytes, tolerance: int, now: float | None = None) -> None:
    """Raise SignatureError unless ``header`` is a fresh, valid signature of ``body``."""
    if not secret:
        raise SignatureError("webhook secret is not configured")
    if not header:
        raise SignatureError(f"missing {HEADER} header")
    parts: dict[str, list[str]] = {}
    for item in header.split(","):
        key, _, value = item.strip().partition("=")
        parts.setdefault(key, []).append(value)
    try:
        timestamp = int(parts["t"][0])
    except (KeyError, ValueError):
        raise SignatureError("signature has no valid timestamp") from None
    now = time.time() if now is None else now
    if abs(now - timestamp) > tolerance:
        raise SignatureError("signature timestamp outside the allowed window")
    expected = sign(secret=secret, body=body, timestamp=timestamp).split("v1=", 1)[1]
    if not any(hmac.compare_digest(expected, candidate) for candidate in parts.get("v1", [])):
        raise SignatureError("signature does not match")

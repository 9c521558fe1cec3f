"""What the autonomy app tells people outside the console: emails to supervisors."""

from django.contrib.auth import get_user_model
from django.core.mail import send_mail

from autonomy.models import Alert
from tickets.roles import SUPERVISOR


def supervisors_notify(*, alert: Alert) -> None:
    """Email every supervisor with an address; the alert itself is the in-app notice."""
    recipients = list(
        get_user_model()
        .objects.filter(is_active=True, groups__name=SUPERVISOR)
        .exclude(email="")
        .values_list("email", flat=True)
        .distinct()
    )
    if not recipients:
        return
    subject = f"[CSAI] {alert.severity.upper()}: {alert.type} on {alert.decision_type}"
    body = (
        f"{alert.recommendation}\n\n"
        f"{alert.metric} = {alert.value:.3f} (bound {alert.threshold:.3f}, n = {alert.samples})."
    )
    if alert.proposed_phase:
        body += f"\nProposed phase: {alert.proposed_phase}."
    send_mail(subject, body, None, recipients, fail_silently=True)

from django.dispatch import receiver

from tickets import signals


@receiver(signals.ticket_received)
def enqueue_intake(sender, *, ticket_id: int, correlation_id: str, **_):
    from tickets.tasks import enqueue_intake

    enqueue_intake(ticket_id=ticket_id, correlation_id=correlation_id)


def ensure_roles(sender, **_):
    from tickets.roles import roles_ensure

    roles_ensure()

from django.dispatch import receiver

from tickets import signals


@receiver(signals.ticket_received)
def enqueue_intake(sender, *, ticket_id: int, **_):
    from tickets.tasks import ticket_intake

    ticket_intake.delay(ticket_id)


def ensure_roles(sender, **_):
    from tickets.roles import roles_ensure

    roles_ensure()

from django.dispatch import receiver

from tickets import signals


@receiver(signals.ticket_received)
def enqueue_intake(sender, *, ticket_id: int, correlation_id: str, **_):
    from csai.logging import TASK_HEADER
    from tickets.tasks import ticket_intake

    ticket_intake.apply_async((ticket_id,), headers={TASK_HEADER: correlation_id})


def ensure_roles(sender, **_):
    from tickets.roles import roles_ensure

    roles_ensure()

from django.dispatch import receiver

from tickets import signals


@receiver(signals.ticket_ready_for_triage)
def start_pipeline(sender, *, ticket_id: int, **_):
    from agents.tasks import pipeline_start

    pipeline_start.delay(ticket_id)


@receiver(signals.customer_wrote)
def start_turn(sender, *, ticket_id: int, **_):
    """The customer wrote again: a turn for their latest message (after any turn under way)."""
    from agents.tasks import pipeline_start

    pipeline_start.delay(ticket_id)

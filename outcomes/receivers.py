from django.dispatch import receiver

from tickets import signals


@receiver(signals.reply_delivered)
def start_quiet_period(sender, *, message, delivered_at, **_):
    from outcomes.services import reply_delivered_record

    reply_delivered_record(message=message, delivered_at=delivered_at)


@receiver(signals.ticket_resolved)
def ask_the_customer(sender, *, ticket, **_):
    from outcomes.services import survey_send

    survey_send(ticket=ticket)

from django.apps import AppConfig


class EventsConfig(AppConfig):
    """Outbound events: the outbox every product app writes to, and its webhook delivery.

    At the bottom of the import order: it imports no product app, and tickets, autonomy and
    the others call ``events.services.event_emit`` inside the transactions of their changes.
    """

    name = "events"
    verbose_name = "Outbound events"

"""Webhook delivery tasks (queue ``events``). Each reloads its row and checks its state
first, so running one twice is harmless."""

import logging

from celery import shared_task

from events import services

logger = logging.getLogger(__name__)


@shared_task
def event_fan_out(event_id: int) -> str:
    """Make an event's deliveries and queue one send per delivery."""
    pending = services.event_fan_out(event_id=event_id)
    if pending is None:
        return "missing"
    for delivery_id in pending:
        delivery_send.delay(delivery_id)
    return f"deliveries:{len(pending)}"


@shared_task
def delivery_send(delivery_id: int) -> str:
    """One attempt of one delivery, if it is due and nobody else is sending it."""
    return services.delivery_attempt(delivery_id=delivery_id)


@shared_task
def events_sweep() -> str:
    """Every minute: events whose fan-out was lost, deliveries whose attempt is due."""
    events, deliveries = services.events_sweep()
    if events or deliveries:
        logger.info("events sweep", extra={"events": events, "deliveries": deliveries})
    return f"events:{events},deliveries:{deliveries}"

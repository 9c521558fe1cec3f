import logging
from datetime import timedelta

from celery import shared_task
from django.conf import settings

from csai.logging import TASK_HEADER
from tickets import delivery, selectors, services, signals
from tickets.models import Ticket

logger = logging.getLogger(__name__)


@shared_task
def ticket_intake(ticket_id: int) -> str:
    """Move a freshly received ticket from "trigger" into triage; safe to run twice."""
    if not services.ticket_advance_stage(
        ticket_id=ticket_id, from_stage=Ticket.Stage.TRIGGER, to_stage=Ticket.Stage.CLASSIFIER
    ):
        if Ticket.objects.filter(pk=ticket_id).exists():
            return "already-triaged"
        logger.warning("intake for unknown ticket", extra={"ticket_id": ticket_id})
        return "missing"
    logger.info("ticket entered triage", extra={"ticket_id": ticket_id})
    signals.ticket_ready_for_triage.send(sender=Ticket, ticket_id=ticket_id)
    return "triaged"


def enqueue_intake(*, ticket_id: int, correlation_id: str) -> None:
    """Queue the intake task, carrying the ticket's correlation id into the worker's logs."""
    ticket_intake.apply_async((ticket_id,), headers={TASK_HEADER: correlation_id})


# A ticket's intake normally runs within a second of commit; one still waiting this long
# had its task lost (broker down at commit, or a lost message) and is enqueued again.
INTAKE_GRACE = timedelta(seconds=settings.CSAI_SWEEP_GRACE["intake"])
SWEEP_BATCH = 500


@shared_task(acks_late=True)
def intake_sweep() -> str:
    """Enqueue intake again for tickets stuck at "trigger"; harmless if one is just slow."""
    stuck = selectors.tickets_stuck_in_intake(older_than=INTAKE_GRACE, limit=SWEEP_BATCH)
    for ticket_id, correlation_id in stuck:
        logger.warning("re-enqueueing intake", extra={"ticket_id": ticket_id})
        enqueue_intake(ticket_id=ticket_id, correlation_id=correlation_id)
    return f"re-enqueued:{len(stuck)}"


@shared_task(acks_late=True)
def sla_refresh() -> str:
    changed = services.sla_refresh()
    return f"sla-updated:{changed}"


@shared_task
def message_deliver(message_id: int) -> str:
    """Send a message to the customer through its ticket's channel; safe to run twice."""
    return delivery.message_deliver(message_id=message_id)


@shared_task(acks_late=True)
def delivery_sweep() -> str:
    """Send again the messages whose delivery task was lost or whose worker was killed."""
    return f"re-enqueued:{delivery.deliveries_sweep()}"


@shared_task(acks_late=True)
def resolution_sweep() -> str:
    """Resolve, by the AI, the tickets whose quiet period after an AI reply has passed."""
    return f"resolved:{services.tickets_resolve_assumed()}"


@shared_task(acks_late=True)
def close_sweep() -> str:
    """Close the tickets resolved more than CSAI_CLOSE_AFTER_DAYS ago."""
    return f"closed:{services.tickets_close_resolved()}"

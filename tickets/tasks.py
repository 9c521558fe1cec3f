import logging

from celery import shared_task
from django.db import OperationalError

from tickets import services, signals
from tickets.models import Ticket

logger = logging.getLogger(__name__)


@shared_task(
    acks_late=True,
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    retry_jitter=True,
    max_retries=5,
)
def ticket_intake(ticket_id: int) -> str:
    """Move a freshly received ticket from "trigger" into triage; safe to run twice."""
    if not Ticket.objects.filter(pk=ticket_id).exists():
        logger.warning("intake for unknown ticket", extra={"ticket_id": ticket_id})
        return "missing"
    if not services.ticket_advance_stage(
        ticket_id=ticket_id, from_stage=Ticket.Stage.TRIGGER, to_stage=Ticket.Stage.CLASSIFIER
    ):
        return "already-triaged"
    logger.info("ticket entered triage", extra={"ticket_id": ticket_id})
    signals.ticket_ready_for_triage.send(sender=Ticket, ticket_id=ticket_id)
    return "triaged"


@shared_task(acks_late=True)
def sla_refresh() -> str:
    changed = services.sla_refresh()
    return f"sla-updated:{changed}"

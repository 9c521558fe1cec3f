"""Periodic autonomy work (schedules in settings.CELERY_BEAT_SCHEDULE): the quality monitor,
calibration refits and retraining. Each task reads the current state first, so running it
twice, or late, is harmless."""

import logging
from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from agents import decision_types
from autonomy import selectors
from autonomy.services import controller, learning, monitor

logger = logging.getLogger(__name__)


@shared_task(acks_late=True)
def quality_monitor() -> str:
    """Check every decision type; critical findings demote at once. Decision types that meet
    their next phase's criteria are proposed to the supervisors for promotion."""
    types = decision_types.names()
    alerts = [alert for t in types for alert in monitor.quality_check(decision_type=t)]
    proposed = [t for t in types if monitor.promotion_propose(decision_type=t)]
    return f"alerts:{len(alerts)} proposed:{','.join(proposed) or 'none'}"


@shared_task(acks_late=True)
def calibration_refresh() -> str:
    """Refit calibrations that have gathered more reviewed evidence."""
    fitted = [t for t in decision_types.names() if learning.calibration_refresh(decision_type=t) is not None]
    return f"refitted:{','.join(fitted) or 'none'}"


@shared_task(acks_late=True)
def model_retrain() -> str:
    """Retrain decision types whose confirmed outcomes grew enough since their model."""
    results = {
        t: learning.model_retrain(decision_type=t).status
        for t in decision_types.names()
        if selectors.retrain_due(decision_type=t)
    }
    return " ".join(f"{t}:{status}" for t, status in results.items()) or "nothing-due"


# A decision is disposed of within a second of being recorded; one without a disposition
# this long after lost its submission (a worker killed between the two, a broker outage).
DISPOSITION_GRACE = timedelta(seconds=settings.CSAI_SWEEP_GRACE["disposition"])
# The frequent sweep looks this far back; the daily one looks at everything.
DISPOSITION_SWEEP_WINDOW = timedelta(days=1)
SWEEP_BATCH = 500


@shared_task
def disposition_sweep(everything: bool = False) -> str:
    """Submit decisions that never got a disposition, so none is lost to people."""
    now = timezone.now()
    lost = selectors.decisions_without_disposition(
        created_before=now - DISPOSITION_GRACE,
        created_since=None if everything else now - DISPOSITION_SWEEP_WINDOW,
        limit=SWEEP_BATCH,
    )
    kinds = [controller.decision_submit(decision_id=decision_id) for decision_id in lost]
    if lost:
        logger.warning("disposition sweep", extra={"submitted": len(lost)})
    return f"submitted:{len(kinds)}"

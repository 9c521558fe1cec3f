"""The autonomy controller: the one place an agent decision is applied or sent to a person."""

import logging

logger = logging.getLogger(__name__)


def decision_submit(*, decision_id: int) -> str:
    """Decide what happens to a recorded agent decision. Idempotent.

    Until the controller lands (phases, calibration, thresholds), every decision stays
    recorded and nothing is applied: the behaviour of phase 1, full human oversight.
    """
    logger.info("decision recorded, not applied", extra={"decision_id": decision_id})
    return "recorded"

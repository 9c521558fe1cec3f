from django.dispatch import receiver

from agents import signals


@receiver(signals.decision_proposed)
def submit_decision(sender, *, decision_id: int, **_):
    from autonomy.services.controller import decision_submit

    decision_submit(decision_id=decision_id)

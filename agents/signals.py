"""Signals other apps listen to, so ``agents`` never imports them."""

from django.dispatch import Signal

# Sent once a step's decisions are stored, again if the step runs again, so the listener
# must be idempotent. The autonomy controller listens. Arguments: decision_id.
decision_proposed = Signal()
